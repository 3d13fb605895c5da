"""The durable outbox: events are committed to SQLite before they are published and
deleted only once the hub has them (or, with ``delivery = "broker"``, on PUBACK).

Durability: WAL journal with ``synchronous=FULL``. In WAL mode FULL fsyncs the
WAL on every commit, so a committed event survives a power cut; NORMAL only
fsyncs at checkpoints and can lose the last transactions on power loss (it is
still safe against ``kill -9``). Marking rows delivered and deleting them commit
without the fsync: losing one only causes a resend. One commit costs ~0.9 ms
here, which is why ``append`` takes many events per transaction: callers that
emit a frame's events together pay one fsync for all of them.

``seq`` is per device and never reused, even when this file is lost: the next
value lives in ``meta`` (advanced in the insert's transaction) and a high-water
mark is kept outside the file (``state.SeqState``, reserved in blocks). Rejected
events take no ``seq``; events dropped by ``drop_oldest`` leave a gap that the hub
reports, and both are counted and logged. Events that fail the wire schema go to
``dead_letters`` (``validate``), never to the hub.

A failed append (disk full, I/O error) raises ``OutboxError`` naming the file and
the real cause, counts ``append_failures`` / ``events_lost``, turns ``health()``
red until an append succeeds again, and burns the seqs it would have used (the hub
sees a gap where events were lost at the device; no seq is ever used twice).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloud_sync.outbox.delivery import DeliveryMixin
from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.open import Opened, open_outbox
from cloud_sync.outbox.row import Row
from cloud_sync.outbox.state import BLOCK, default_state_path, read_state, write_state
from cloud_sync.outbox.validate import Refused, check_group
from edge.events import Event
from edge.supervise import ComponentHealth

log = logging.getLogger(__name__)

WhenFull = Literal["drop_oldest", "reject_new"]
Synchronous = Literal["FULL", "NORMAL", "OFF"]

MAX_DEAD_LETTERS = 10_000
"""Dead letters kept; older ones are trimmed (counted, logged) so a bug that refuses
every event cannot fill the disk."""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float
    dropped: int
    rejected: int
    next_seq: int
    delivered_unacked: int = 0
    dead_letters: int = 0  # refused by the wire schema this boot
    append_failures: int = 0
    events_lost: int = 0
    epoch: int = 0


class Outbox(DeliveryMixin):
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
        state_path: Path | None = None,
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
        self.dead_lettered = 0  # refused by the wire schema since this boot
        self.dead_reasons: dict[str, int] = {}
        self.append_failures = 0
        self.events_lost = 0
        self.last_error: str | None = None  # the last append failure, until one succeeds
        self._last_full_log = 0.0
        self._synchronous = synchronous
        self.state_path = state_path or default_state_path(path)
        opened: Opened = open_outbox(path, self.state_path, device_id, synchronous)
        self._db = opened.db
        self.state = opened.state
        self.epoch = opened.state.epoch
        self.seq_start = opened.next_seq
        self.outbox_reset = opened.reset_reason is not None
        self.reset_reason = opened.reset_reason
        self.salvaged = opened.salvaged
        self._next_seq = opened.next_seq
        # readers get their own connection: WAL lets them read while an append waits on fsync
        self._rdb = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._rlock = threading.Lock()
        count, nbytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM events"
        ).fetchone()
        self._depth = int(count)
        self._bytes = int(nbytes)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        # lifetime totals for `edge outbox stats`, written with the next commit
        self._totals_base = (int(meta.get("dropped_total", 0)), int(meta.get("rejected_total", 0)))
        self._totals_saved = (0, 0)

    # --- writer side ------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called (outside the lock) after each commit that added events."""
        self._listeners.append(fn)

    def append(self, events: Sequence[Event]) -> int:
        """Commit ``events`` in one transaction (durable on return); returns how many were kept
        for delivery. Events that fail the wire schema are kept as dead letters instead.
        Raises ``OutboxError`` when the commit fails (the events are lost and counted)."""
        if not events:
            return 0
        now = time.time()
        encoded = [self._encode(e) for e in events]
        refused = check_group(encoded)
        dead: list[tuple[float, str, str, str]] = []
        if refused:
            bad = {r.index for r in refused}
            dead = [(now, r.reason, r.message, "{" + encoded[r.index]) for r in refused]
            encoded = [b for i, b in enumerate(encoded) if i not in bad]
        with self._lock:
            try:
                n = self._commit(encoded, dead, now)
            except (sqlite3.Error, OSError, OutboxError) as exc:
                self._failed(exc, len(encoded) + len(dead))
                raise self._error(exc) from None
            self.last_error = None
        if refused:
            self._count_dead(refused)
        if n:
            for fn in self._listeners:
                fn()
        return n

    def _commit(
        self, encoded: list[str], dead: list[tuple[float, str, str, str]], now: float
    ) -> int:
        """One transaction: policy, seq, inserts, dead letters. Called with the lock held.

        The next seq is read back from ``meta`` inside the transaction, so two Outbox
        objects on one file (a sink rebuilt by a reload while the old one closes) can
        never hand out the same seq."""
        db = self._db
        depth, nbytes, dropped = self._depth, self._bytes, self.dropped
        try:
            db.execute("BEGIN IMMEDIATE")
            got = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            if got is not None:
                self._next_seq = max(self._next_seq, int(got[0]))
            kept = self._make_room(encoded) if encoded else []
            first = self._next_seq
            rows = [
                (first + i, self.boot_id, now, f'{{"seq":{first + i},{body}')
                for i, body in enumerate(kept)
            ]
            end = first + len(rows)
            if end > self.state.seq_reserved:  # a new block, recorded before a seq in it is used
                self.state.seq_reserved = end + BLOCK
                self.state.clean = False
                write_state(self.state_path, self.state)
            self._next_seq = end  # burnt even if the commit fails: a seq is never used twice
            if rows:
                db.executemany(
                    "INSERT INTO events(seq, boot_id, created, payload) VALUES (?, ?, ?, ?)", rows
                )
                db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (str(end),))
            if dead:
                db.executemany(
                    "INSERT INTO dead_letters(created, reason, detail, payload) "
                    "VALUES (?, ?, ?, ?)",
                    dead,
                )
                self._trim_dead()
            if (self.dropped, self.rejected) != self._totals_saved:
                base_d, base_r = self._totals_base
                db.executemany(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    [("dropped_total", str(base_d + self.dropped)),
                     ("rejected_total", str(base_r + self.rejected))],
                )  # fmt: skip
            db.execute("COMMIT")  # the one fsync (nothing to sync when nothing was written)
            self._totals_saved = (self.dropped, self.rejected)
        except BaseException:
            # SQLite may already have rolled back (SQLITE_FULL does): a second ROLLBACK would
            # fail with "no transaction is active" and hide the real error
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.debug("%s: rollback after a failed append: %s", self.path, exc)
            # a drop_oldest delete was rolled back too: those rows are still there
            self._depth, self._bytes, self.dropped = depth, nbytes, dropped
            raise
        self._depth += len(rows)
        self._bytes += sum(len(r[3]) for r in rows)
        return len(rows)

    def _failed(self, exc: BaseException, n: int) -> None:
        self.append_failures += 1
        self.events_lost += n
        first = self.last_error is None
        self.last_error = _cause(exc)
        if first or self.append_failures % 100 == 0:
            log.error(
                "%s: append failed (%s): %d event(s) lost; totals this boot: %d failures, "
                "%d events lost", self.path, self.last_error, n, self.append_failures,
                self.events_lost,
            )  # fmt: skip

    def _error(self, exc: BaseException) -> OutboxError:
        return OutboxError(f"{self.path}: cannot commit events to the outbox ({_cause(exc)})")

    def _count_dead(self, refused: list[Refused]) -> None:
        for r in refused:
            self.dead_lettered += 1
            seen = self.dead_reasons.get(r.reason, 0)
            self.dead_reasons[r.reason] = seen + 1
            if not seen:  # once per reason: a broken stream must not flood the log
                log.error(
                    "%s: event refused by the wire schema (%s), kept in dead_letters, not "
                    "published; see `edge outbox dead-letters`", self.path, r.message,
                )  # fmt: skip

    def _trim_dead(self) -> None:
        n = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        if int(n) > MAX_DEAD_LETTERS:
            extra = int(n) - MAX_DEAD_LETTERS
            self._db.execute(
                "DELETE FROM dead_letters WHERE id IN "
                "(SELECT id FROM dead_letters ORDER BY id LIMIT ?)",
                (extra,),
            )
            log.warning("%s: trimmed the %d oldest dead letters", self.path, extra)

    def _encode(self, event: Event) -> str:
        """The event's JSON without its opening brace and ``seq`` (prepended under the lock)."""
        return event.encode(self.device_id, self.boot_id)[1:]  # edge.events: one serialisation

    def _make_room(self, encoded: list[str]) -> list[str]:
        """Apply the when-full policy; called with the lock held.

        Delivered-but-unacked rows count toward ``max_bytes``: they are on this disk and
        the hub does not have them yet, so they are not safe to forget (the bound is a
        bound on the file, and a drop of one is a loss the hub must be able to see)."""
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
        freed, last, n = 0, -1, 0
        while freed < excess:
            more = self._db.execute(
                "SELECT seq, LENGTH(payload) FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, max(16, len(encoded) * 2)),
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
        """Up to ``limit`` not yet delivered rows with ``seq > after_seq``, in ``seq`` order."""
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT seq, boot_id, created, payload FROM events WHERE seq > ? "
                "AND delivered IS NULL ORDER BY seq LIMIT ?",
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

    def stats(self) -> OutboxStats:
        with self._rlock:
            row = self._rdb.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
            delivered = self._rdb.execute(
                "SELECT COUNT(*) FROM events WHERE delivered IS NOT NULL"
            ).fetchone()[0]
        oldest = float(row[0]) if row and row[0] is not None else None
        with self._lock:
            return OutboxStats(
                depth=self._depth,
                bytes=self._bytes,
                oldest_age_s=max(0.0, time.time() - oldest) if oldest is not None else 0.0,
                dropped=self.dropped,
                rejected=self.rejected,
                next_seq=self._next_seq,
                delivered_unacked=int(delivered),
                dead_letters=self.dead_lettered,
                append_failures=self.append_failures,
                events_lost=self.events_lost,
                epoch=self.epoch,
            )

    def health(self) -> ComponentHealth:
        """Red while appends fail (full disk, read-only, I/O error); not fatal: it recovers
        by itself when space is freed."""
        err = self.last_error
        if err is not None:
            return ComponentHealth(
                "sync-outbox",
                False,
                f"{self.path}: appends failing ({err}); {self.events_lost} event(s) lost "
                f"in {self.append_failures} failed append(s)",
            )
        if self.events_lost:
            return ComponentHealth(
                "sync-outbox",
                True,
                f"recovered; {self.events_lost} event(s) lost in {self.append_failures} "
                "failed append(s) this boot",
            )
        return ComponentHealth("sync-outbox", True)

    def close(self) -> None:
        with self._lock, self._rlock:
            self._rdb.close()
            try:
                clean = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                self._db.close()
                newer = read_state(self.state_path)
                if newer is not None and newer.epoch != self.epoch:
                    return  # another Outbox opened this file since (a reload): its state wins
                if clean is not None and int(clean[0]) == 0:
                    self.state.clean = True
                    self.state.next_seq = self._next_seq
                    write_state(self.state_path, self.state)
            except (sqlite3.Error, OutboxError) as exc:
                log.warning("%s: unclean close: %s", self.path, exc)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def batch_payload(device_id: str, boot_id: str, rows: Sequence[Row]) -> bytes:
    """An EventBatchV1 built from stored rows without re-encoding each event."""
    body = ",".join(r.payload for r in rows)
    return (
        f'{{"v":1,"device_id":{json.dumps(device_id)},"boot_id":"{boot_id}","events":[{body}]}}'
    ).encode()
