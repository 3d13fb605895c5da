"""The argument parser every edgewise CLI builds on.

``allow_abbrev`` is off: argparse would otherwise take ``--conf`` for ``--config``
silently, and a flag added later could change what an old abbreviation means.
``add_subparsers`` makes sub-parsers of this same class, so every sub-command
inherits it.
"""

from __future__ import annotations

import argparse
from typing import Any


class ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)
