"""Read a device's outbox from outside the daemon, read-only, while it runs.

SQLite in WAL mode lets a second process read a consistent snapshot without blocking the
writer. ``next_seq`` is the outbox's own high-water mark: every seq below it was committed
(and assigned exactly once) by some boot of the device.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutboxState:
    depth: int  # rows still held (not yet acknowledged)
    next_seq: int  # the next seq the device will assign
    seqs: tuple[int, ...]  # the held rows' seqs


def read_outbox(path: Path) -> OutboxState | None:
    """The outbox at ``path`` now; None while it does not exist yet."""
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        seqs = tuple(int(s) for (s,) in db.execute("SELECT seq FROM events ORDER BY seq"))
    except sqlite3.OperationalError:  # created but the schema is not committed yet
        return None
    finally:
        db.close()
    return OutboxState(len(seqs), int(row[0]) if row else 0, seqs)
