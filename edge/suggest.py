""" "Did you mean …" for a mistyped name: a model, a profile, a config key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The names in ``choices`` closest to ``word`` (difflib's ratio >= 0.6), best first.

    Case is ignored for the comparison (``Blazeface-Short`` finds ``blazeface-short``)."""
    names = list(choices)
    by_lower = {c.lower(): c for c in names}
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n)]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` (or ``'x' or 'y'``) to follow the unknown name, or ``""``."""
    found = close_matches(word, choices)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
