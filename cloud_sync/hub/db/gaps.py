"""Gaps in a device's sequence numbers, and what caused them.

The store finds the holes between stored seqs (and the leading one below the
first stored seq: a device's seqs start at 0, so events 0..364 that never reached
the hub are a gap too). Each hole is then split at the ``seq_start`` of any boot
whose status birth falls inside it: the part below a boot that said
``outbox_reset`` was lost at the device (its outbox was gone when it started),
the rest is ``in_transit`` (sent or due, never stored here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Birth:
    boot_id: str
    seq_start: int
    outbox_reset: bool


@dataclass(frozen=True, slots=True)
class Hole:
    first: int  # inclusive
    last: int  # inclusive
    after_ts: float | None  # capture time of the stored event below (None: leading gap)
    before_ts: float | None


def split(hole: Hole, births: list[Birth]) -> list[tuple[int, int, str, str | None]]:
    """``(first, last, cause, boot_id)`` pieces of one hole; ``births`` sorted by seq_start."""
    out: list[tuple[int, int, str, str | None]] = []
    lo = hole.first
    for b in births:
        if not lo < b.seq_start <= hole.last + 1:
            continue
        out.append((lo, b.seq_start - 1, "outbox_reset" if b.outbox_reset else "in_transit",
                    b.boot_id if b.outbox_reset else None))  # fmt: skip
        lo = b.seq_start
    if lo <= hole.last:
        out.append((lo, hole.last, "in_transit", None))
    merged: list[tuple[int, int, str, str | None]] = []
    for p in out:  # adjacent in-transit pieces are one gap
        if merged and merged[-1][2] == p[2] == "in_transit" and merged[-1][1] + 1 == p[0]:
            merged[-1] = (merged[-1][0], p[1], "in_transit", None)
        else:
            merged.append(p)
    return merged
