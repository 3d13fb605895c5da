"""Opening the outbox file: checks, recovery, and where ``seq`` continues.

The decision table (``state`` is ``state.json``, kept outside the outbox):

===========================================  ===========================================
found                                        next seq
===========================================  ===========================================
no state file (first boot, or an old device)  the outbox's own ``next_seq``
outbox intact (same ``outbox_id``; after a    the outbox's own ``next_seq`` (no gap)
clean stop also the same ``next_seq``)
outbox missing, empty or replaced             ``seq_reserved``: reset
WAL missing or torn after an unclean stop     ``seq_reserved``: reset
file fails ``quick_check`` / cannot be read   moved aside, rows salvaged, ``seq_reserved``: reset
===========================================  ===========================================

A reset is logged, counted (``Outbox.outbox_reset``) and announced in the status birth
(``outbox_reset``, ``seq_start``), so the hub labels the gap "lost at the device".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from cloud_sync.outbox import recover
from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.state import BLOCK, SeqState, read_state, write_state
from edge.errors import ConfigError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL,
    created REAL NOT NULL,
    payload TEXT NOT NULL,
    delivered REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    reason TEXT NOT NULL,  -- the counter's key: "score: less_than_equal"
    detail TEXT NOT NULL,  -- pydantic's message
    payload TEXT NOT NULL  -- the event as the device would have sent it (without seq)
);
"""


@dataclass(slots=True)
class Opened:
    db: sqlite3.Connection
    state: SeqState
    next_seq: int
    reset_reason: str | None
    salvaged: int


def open_outbox(path: Path, state_path: Path, device_id: str, synchronous: str) -> Opened:
    _check_dir(path.parent)
    state = read_state(state_path)
    wal_issue = recover.wal_problem(path, clean_stop=state.clean if state else True)
    problem: str | None = None
    db: sqlite3.Connection | None = None
    try:
        db = _connect(path)
        problem = recover.check(db)
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        problem = str(exc)
    except (sqlite3.Error, OSError) as exc:
        raise OutboxError(f"{path}: cannot open the outbox ({exc})") from None
    salvage: recover.Salvage | None = None
    if problem is not None:
        if db is not None:
            db.close()
        upper = state.seq_reserved if state else 0
        aside = recover.move_aside(path)
        salvage = recover.salvage(aside, problem, upper)
        log.error(
            "%s: the outbox is damaged (%s); moved aside to %s (kept, never deleted), "
            "salvaged %d row(s) into a new outbox", path, problem, aside.name, len(salvage.rows),
        )  # fmt: skip
        db = _connect(path)
    assert db is not None
    try:
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(SCHEMA)
        _migrate(db)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        top = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    except sqlite3.Error as exc:
        db.close()
        raise OutboxError(f"{path}: cannot prepare the outbox ({exc})") from None
    own_next = max(int(meta.get("next_seq", 0)), int(top) + 1 if top is not None else 0)
    outbox_id = meta.get("outbox_id")
    reason: str | None = None
    if salvage is not None:
        reason = f"damaged ({salvage.reason}); moved aside to {salvage.aside.name}"
        if salvage.rows:
            own_next = max(own_next, salvage.rows[-1][0] + 1)
        own_next = max(own_next, salvage.next_seq)
    elif state is not None and state.outbox_id is not None:
        if wal_issue is not None:
            reason = wal_issue
        elif outbox_id is None:
            reason = "the outbox file was missing or empty"
        elif outbox_id != state.outbox_id:
            reason = "the outbox file was replaced by another one"
        elif state.clean and own_next < state.next_seq:
            reason = f"the outbox lost commits (next_seq {own_next}, {state.next_seq} at stop)"
    next_seq = own_next
    if reason is not None and state is not None:
        next_seq = max(own_next, state.seq_reserved, state.next_seq)
    new_state = SeqState(
        device_id=device_id,
        epoch=(state.epoch + 1) if state else 1,
        seq_reserved=max(state.seq_reserved if state else 0, next_seq + BLOCK),
        outbox_id=outbox_id or str(uuid.uuid4()),
        clean=False,
        next_seq=next_seq,
    )
    try:
        db.execute("BEGIN IMMEDIATE")
        if salvage is not None and salvage.rows:
            db.executemany(
                "INSERT OR IGNORE INTO events(seq, boot_id, created, payload) VALUES (?,?,?,?)",
                salvage.rows,
            )
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)",
                   (str(next_seq),))  # fmt: skip
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('outbox_id', ?)",
                   (new_state.outbox_id,))  # fmt: skip
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.close()
        raise OutboxError(f"{path}: cannot write the outbox ({exc})") from None
    write_state(state_path, new_state)
    if reason is not None:
        log.error(
            "%s: outbox reset: %s; seqs continue at %d (never reused; the hub marks the gap "
            "as lost at the device)", path, reason, next_seq,
        )  # fmt: skip
    return Opened(db, new_state, next_seq, reason, len(salvage.rows) if salvage else 0)


def _check_dir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{d}: cannot create the data dir for the outbox ({exc.strerror}); "
            "set data_dir or sync.outbox.path to a writable directory"
        ) from None
    if not os.access(d, os.W_OK):
        raise ConfigError(
            f"{d}: the data dir is not writable (read-only file system or permissions); "
            "the outbox must create files there: set data_dir or sync.outbox.path"
        )


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        db.close()
        raise ConfigError(
            f"{path}: SQLite refused WAL mode ({mode}); put the outbox on a local disk"
        )
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Outboxes written before hub acknowledgements lack two columns."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(events)").fetchall()}
    if "delivered" not in cols:
        db.execute("ALTER TABLE events ADD COLUMN delivered REAL")
    if "attempts" not in cols:
        db.execute("ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
