"""Where a key sits in the TOML text: the ``file:line`` of each config problem.

``tomllib`` keeps no positions, so the text is scanned for table headers and
``key =`` lines; a problem is reported at its key, or at the nearest enclosing one.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.\s]+?)\s*=")

KeyLines = dict[tuple[str, ...], int]


def _split_key(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


def key_lines(text: str) -> KeyLines:
    """Path → 1-based line of every table header and key (arrays of tables get their index,
    nested ones too: ``[[streams.zones]]`` is ``streams.<i>.zones.<j>``)."""
    lines: KeyLines = {}
    counts: dict[tuple[str, ...], int] = {}  # resolved path of an array of tables → last index
    table: tuple[str, ...] = ()
    for no, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            path: tuple[str, ...] = ()
            for part in _split_key(m.group(2)):
                if path in counts and path:  # a parent array of tables: its current element
                    path = (*path, str(counts[path]))
                path = (*path, part)
            if path in counts and m.group(1) != "[[":  # [a.b] under the last [[a]] element
                path = (*path, str(counts[path]))
            if m.group(1) == "[[":
                idx = counts.get(path, -1) + 1
                counts[path] = idx
                lines.setdefault(path, no)
                table = (*path, str(idx))
            else:
                table = path
            lines.setdefault(table, no)
            continue
        k = _KEY.match(line)
        if k and not line.lstrip().startswith("#"):
            lines.setdefault((*table, *_split_key(k.group(1))), no)
    return lines


def find_line(lines: KeyLines, loc: tuple[str, ...]) -> int:
    """The line of ``loc`` or of its nearest enclosing key; 1 when nothing matches."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1
