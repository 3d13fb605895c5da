"""The durable outbox: events are committed to SQLite before they are published and
deleted only after the broker's PUBACK.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode FULL fsyncs the
WAL on every commit, so a committed event survives a power cut; NORMAL only
fsyncs at checkpoints and can lose the last transactions on power loss (it is
still safe against ``kill -9``). Deletes after PUBACK commit without the fsync:
losing one only causes a resend. One commit costs ~0.9 ms here, which is why
``append`` takes many events per transaction: callers that emit a frame's
events together pay one fsync for all of them.

``seq`` is per device and monotonic across restarts: the next value lives in the
``meta`` table and is advanced in the same transaction as the insert, so a crash
can neither reuse nor skip a number. Rejected events take no ``seq``; events
dropped by ``drop_oldest`` leave a gap that the hub reports, and both are
counted (``dropped``) and logged.

Thread-safe: a writer connection behind a lock (appends, acks) and a reader
connection behind another (the sender's reads), so reading never waits for an
append's fsync.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.errors import ConfigError
from edge.events import Event

log = logging.getLogger(__name__)

WhenFull = Literal["drop_oldest", "reject_new"]
Synchronous = Literal["FULL", "NORMAL", "OFF"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL,
    created REAL NOT NULL,
    payload TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    boot_id: str
    created: float  # epoch seconds when the event entered the outbox
    payload: str  # one EventV1 as JSON


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float
    dropped: int
    rejected: int
    next_seq: int


class Outbox:
    """A bounded, durable FIFO of wire events for one device."""

    def __init__(
        self,
        path: Path,
        device_id: str,
        boot_id: str,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        when_full: WhenFull = "drop_oldest",
        synchronous: Synchronous = "FULL",
    ) -> None:
        self.path = path
        self.device_id = device_id
        self.boot_id = boot_id
        self.max_bytes = max_bytes
        self.when_full: WhenFull = when_full
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.dropped = 0  # drop_oldest victims since this boot
        self.rejected = 0  # reject_new refusals since this boot
        self._last_full_log = 0.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"{path}: cannot open the outbox ({exc}); check [sync.outbox] path"
            ) from None
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"{path}: SQLite refused WAL mode ({mode}); put the outbox on a local disk"
            )
        self._synchronous = synchronous
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta(key, value) VALUES ('next_seq', '0')")
            self._next_seq = 0
        else:
            self._next_seq = int(row[0])
        # readers get their own connection: WAL lets them read while an append waits on fsync
        self._rdb = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._rlock = threading.Lock()
        count, nbytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM events"
        ).fetchone()
        self._depth = int(count)
        self._bytes = int(nbytes)

    # --- writer side ------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called (outside the lock) after each commit that added events."""
        self._listeners.append(fn)

    def append(self, events: Sequence[Event]) -> int:
        """Commit ``events`` in one transaction (durable on return); returns how many were kept."""
        if not events:
            return 0
        now = time.time()
        encoded = [self._encode(e) for e in events]
        with self._lock:
            kept = self._make_room(encoded)
            if not kept:
                return 0
            first = self._next_seq
            rows = []
            for i, body in enumerate(kept):
                payload = f'{{"seq":{first + i},{body}'
                rows.append((first + i, self.boot_id, now, payload))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO events(seq, boot_id, created, payload) VALUES (?, ?, ?, ?)", rows
                )
                self._db.execute(
                    "UPDATE meta SET value=? WHERE key='next_seq'", (str(first + len(rows)),)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._next_seq = first + len(rows)
            self._depth += len(rows)
            self._bytes += sum(len(r[3]) for r in rows)
        for fn in self._listeners:
            fn()
        return len(rows)

    def _encode(self, event: Event) -> str:
        """The event's JSON without its opening brace and ``seq`` (prepended under the lock)."""
        return event.encode(self.device_id, self.boot_id)[1:]  # edge.events: one serialisation

    def _make_room(self, encoded: list[str]) -> list[str]:
        """Apply the when-full policy; called with the lock held."""
        need = sum(len(b) + 16 for b in encoded)
        if self._bytes + need <= self.max_bytes:
            return encoded
        if self.when_full == "reject_new":
            room = self.max_bytes - self._bytes
            kept: list[str] = []
            for b in encoded:
                room -= len(b) + 16
                if room < 0:
                    break
                kept.append(b)
            n = len(encoded) - len(kept)
            self.rejected += n
            self._log_full(f"rejected {n} new event(s)")
            return kept
        # drop_oldest: delete from the head until the new events fit
        excess = self._bytes + need - self.max_bytes
        victims = self._db.execute(
            "SELECT seq, LENGTH(payload) FROM events ORDER BY seq LIMIT ?",
            (max(1, len(encoded) * 2),),
        ).fetchall()
        freed, last, n = 0, -1, 0
        for seq, size in victims:
            if freed >= excess:
                break
            freed += int(size)
            last = int(seq)
            n += 1
        while freed < excess:  # rare: very uneven sizes, take more rows
            more = self._db.execute(
                "SELECT seq, LENGTH(payload) FROM events WHERE seq > ? ORDER BY seq LIMIT 256",
                (last,),
            ).fetchall()
            if not more:
                break
            for seq, size in more:
                if freed >= excess:
                    break
                freed += int(size)
                last = int(seq)
                n += 1
        if n:
            self._db.execute("DELETE FROM events WHERE seq <= ?", (last,))
            self._depth -= n
            self._bytes -= freed
            self.dropped += n
            self._log_full(f"dropped the {n} oldest event(s) up to seq {last}")
        return encoded

    def _log_full(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_full_log >= 5.0:
            self._last_full_log = now
            log.warning(
                "%s: outbox full (%d bytes, max_bytes %d, when_full=%s): %s; "
                "totals this boot: dropped %d, rejected %d",
                self.path, self._bytes, self.max_bytes, self.when_full, what,
                self.dropped, self.rejected,
            )  # fmt: skip

    # --- reader side ------------------------------------------------------------------------

    def read(self, after_seq: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with ``seq > after_seq``, in ``seq`` order."""
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT seq, boot_id, created, payload FROM events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Row(int(s), str(b), float(c), str(p)) for s, b, c, p in rows]

    def read_range(self, first: int, last: int) -> list[Row]:
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT seq, boot_id, created, payload FROM events WHERE seq BETWEEN ? AND ? "
                "ORDER BY seq",
                (first, last),
            ).fetchall()
        return [Row(int(s), str(b), float(c), str(p)) for s, b, c, p in rows]

    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the acknowledged ``[first, last]`` ranges in one transaction."""
        ranges = list(ranges)
        if not ranges:
            return 0
        with self._lock:
            # a lost delete only means a resend (a duplicate the hub drops by id), so deletes
            # skip the fsync; the next FULL commit syncs the WAL up to and including them
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n, freed = 0, 0
                for first, last in ranges:
                    c, b = self._db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM events "
                        "WHERE seq BETWEEN ? AND ?",
                        (first, last),
                    ).fetchone()
                    self._db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, last))
                    n += int(c)
                    freed += int(b)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            self._depth -= n
            self._bytes -= freed
        return n

    def stats(self) -> OutboxStats:
        with self._rlock:
            row = self._rdb.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
        oldest = float(row[0]) if row and row[0] is not None else None
        with self._lock:
            return OutboxStats(
                depth=self._depth,
                bytes=self._bytes,
                oldest_age_s=max(0.0, time.time() - oldest) if oldest is not None else 0.0,
                dropped=self.dropped,
                rejected=self.rejected,
                next_seq=self._next_seq,
            )

    def close(self) -> None:
        with self._lock, self._rlock:
            self._rdb.close()
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_payload(device_id: str, boot_id: str, rows: Sequence[Row]) -> bytes:
    """An EventBatchV1 built from stored rows without re-encoding each event."""
    body = ",".join(r.payload for r in rows)
    return (
        f'{{"v":1,"device_id":{json.dumps(device_id)},"boot_id":"{boot_id}","events":[{body}]}}'
    ).encode()
