"""The argument parser every edgewise CLI builds on.

``allow_abbrev`` is off: argparse would otherwise take ``--conf`` for ``--config``
silently, and a flag added later could change what an old abbreviation means.
``add_subparsers`` makes sub-parsers of this same class, so every sub-command
inherits it. A mistyped sub-command or choice gets a "did you mean" (argparse
before Python 3.14 only lists the choices).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

from edge.suggest import did_you_mean

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


class ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            message += did_you_mean(m.group(1), choices)
        super().error(message)
