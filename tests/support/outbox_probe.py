"""Read a device's outbox from outside the daemon, read-only, while it runs.

SQLite in WAL mode lets a second process read a consistent snapshot without blocking the
writer. ``next_seq`` is the outbox's own high-water mark: every seq below it was committed
(and assigned exactly once) by some boot of the device.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def outbox_stats(config: Path) -> dict[str, Any]:
    """``edge outbox --config CONFIG stats --json``: the device's own account of its outbox
    (depth, next_seq, dead letters, drops, epoch), read-only while the daemon runs."""
    argv = [sys.executable, "-m", "edge.cli.main", "outbox", "--config", str(config)]
    out = subprocess.run([*argv, "stats", "--json"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"edge outbox stats failed ({out.returncode}): {out.stderr[-1000:]}")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc
