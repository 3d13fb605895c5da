"""Finding and surviving a damaged outbox file.

At open the outbox runs ``PRAGMA quick_check`` (O(pages), a few ms per MB). A file
that fails it, or that SQLite cannot read at all, is moved aside (with its ``-wal``
and ``-shm``) as ``outbox.db.corrupt-<ts>``, never deleted; a fresh outbox is
created and every row that can still be read from the damaged copy is copied into
it with its seq and payload (salvage), so undelivered events survive a torn page.

Before SQLite opens the file we also look at the WAL, because SQLite silently
ignores a WAL it cannot use: a missing WAL after an unclean stop, or one whose
length is not a whole number of frames (torn), means the last commits may be gone,
so the outbox's own next_seq cannot be trusted (the seq state decides instead).
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_WAL_HEADER = 32
_FRAME_HEADER = 24


@dataclass(frozen=True, slots=True)
class Salvage:
    aside: Path  # where the damaged file now is
    rows: list[tuple[int, str, float, str]]  # (seq, boot_id, created, payload)
    next_seq: int  # the damaged file's meta next_seq, when readable (else -1)
    reason: str


def wal_problem(db: Path, clean_stop: bool) -> str | None:
    """Why the WAL beside ``db`` cannot be trusted, or None."""
    wal = db.with_name(db.name + "-wal")
    if not db.exists() or db.stat().st_size == 0:
        return None  # nothing to lose here; an empty/missing db is handled by the caller
    if not wal.exists():
        # a clean close checkpoints and deletes the WAL; after an unclean stop it must be there
        return None if clean_stop else "the WAL is missing after an unclean stop"
    size = wal.stat().st_size
    if size == 0:
        return None if clean_stop else "the WAL is empty after an unclean stop"
    if size < _WAL_HEADER:
        return f"the WAL is torn ({size} bytes, shorter than its header)"
    with wal.open("rb") as f:
        header = f.read(_WAL_HEADER)
    magic, _version, page_size = struct.unpack(">III", header[:12])
    if magic not in (0x377F0682, 0x377F0683) or page_size < 512:
        return "the WAL header is damaged"
    if (size - _WAL_HEADER) % (_FRAME_HEADER + page_size):
        return f"the WAL is torn ({size} bytes is not a whole number of frames)"
    return None


def check(db: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check``: None when fine, else the first problem."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if rows and rows[0][0] == "ok":
        return None
    return str(rows[0][0]) if rows else "quick_check returned nothing"


def move_aside(db: Path) -> Path:
    """Move ``db`` and its ``-wal``/``-shm`` aside as ``<name>.corrupt-<ts>``; return where."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = db.with_name(f"{db.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = db.with_name(f"{db.name}.corrupt-{stamp}.{n}")
        n += 1
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            side.replace(aside.with_name(aside.name + suffix))
    db.replace(aside)
    return aside


def salvage(aside: Path, reason: str, upper_seq: int) -> Salvage:
    """Every row that can be read from the damaged copy, in seq order.

    Reads in seq ranges; a range that fails is skipped with a growing step (a damaged
    page costs a few lookups, not one per seq), up to ``upper_seq`` (the seq state's
    high-water mark: no row can lie above it)."""
    rows: list[tuple[int, str, float, str]] = []
    next_seq = -1
    try:
        con = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.error("%s: nothing can be salvaged (%s)", aside, exc)
        return Salvage(aside, rows, next_seq, reason)
    try:
        try:
            r = con.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            next_seq = int(r[0]) if r else -1
        except (sqlite3.Error, ValueError):
            pass
        try:
            top = con.execute("SELECT MAX(seq) FROM events").fetchone()[0]
            if top is not None:
                upper_seq = max(upper_seq, int(top) + 1)
        except sqlite3.Error:
            pass
        upper_seq = max(upper_seq, next_seq)
        start, step, failures = 0, 1, 0
        while start < upper_seq and failures < 10_000:
            progressed = False
            try:
                cur = con.execute(
                    "SELECT seq, boot_id, created, payload FROM events WHERE seq >= ? ORDER BY seq",
                    (start,),
                )
                for seq, boot, created, payload in cur:  # row by row: keep all before a bad page
                    if isinstance(payload, str) and isinstance(boot, str):
                        rows.append((int(seq), boot, float(created), payload))
                    start = int(seq) + 1
                    progressed = True
                break  # read to the end
            except sqlite3.Error:
                failures += 1
                if progressed:
                    step = 1
                start += step
                step = min(step * 2, 1024)
    finally:
        con.close()
    return Salvage(aside, rows, next_seq, reason)
