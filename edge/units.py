"""Sizes for people, in one style everywhere: binary units (KiB, MiB, GiB).

Every CLI message, table and report formats a byte count with ``format_size`` so the
README, ``edge models list`` and a conversion report never disagree about what a
"MB" is (they once printed 0.23 MB and 223.7 KB for the same file).
"""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_size(n: float) -> str:
    """``n`` bytes as ``"512 B"``, ``"223.7 KiB"``, ``"2.6 GiB"`` (1 KiB = 1024 B)."""
    if n != n or n < 0:  # NaN or negative: a caller's bug, shown rather than hidden
        raise ValueError(f"a size is a byte count >= 0, not {n!r}")
    if n < 1024:
        return f"{int(n)} B"
    size = float(n)
    for unit in _UNITS:
        size /= 1024
        if size < 1024 or unit == _UNITS[-1]:
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")
