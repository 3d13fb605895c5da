"""The argument parser every edgewise CLI builds on.

``allow_abbrev`` is off: argparse would otherwise take ``--conf`` for ``--config``
silently, and a flag added later could change what an old abbreviation means.
``add_subparsers`` makes sub-parsers of this same class, so every sub-command
inherits it. A mistyped sub-command or choice gets a "did you mean" (argparse
before Python 3.14 only lists the choices), and so does a flag a sub-command does not
know: ``edge run --conf x.toml`` says "unrecognized arguments: --conf (did you mean
'--config'?)", where argparse would first complain that ``--config`` is missing and
leave the typo unsaid. (Nothing after a sub-command is for its parent: the parent's
flags come before it, so a sub-command refusing what it does not know changes no
outcome, only the message.)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from edge.suggest import did_you_mean

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


class ArgumentParser(argparse.ArgumentParser):
    _sub_command = False  # True for the parsers add_subparsers makes (_SubCommandParser)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _SubCommandParser)
        return super().add_subparsers(**kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        if self._sub_command and self._subparsers is None:  # a parent leaves it to its own
            stray = self._unknown_flag(argv)
            if stray is not None:
                known = [s for s in self._option_string_actions if s.startswith("--")]
                self.error(f"unrecognized arguments: {stray}" + did_you_mean(stray, known))
        return super().parse_known_args(argv, namespace)

    def _unknown_flag(self, argv: list[str]) -> str | None:
        """The first arg that looks like a flag and is none of this parser's."""
        known = self._option_string_actions
        for arg in argv:
            if arg == "--":
                return None
            if not arg.startswith("-") or arg == "-":
                continue
            if self._negative_number_matcher.match(arg):
                continue  # a value such as -0.5
            flag = arg.split("=", 1)[0]
            if flag in known or (not arg.startswith("--") and arg[:2] in known):
                continue  # -cFILE: a short flag with its value attached
            return flag
        return None

    def error(self, message: str) -> NoReturn:
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            message += did_you_mean(m.group(1), choices)
        super().error(message)


class _SubCommandParser(ArgumentParser):
    _sub_command = True
