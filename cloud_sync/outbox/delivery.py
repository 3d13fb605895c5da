"""Delivery bookkeeping on the outbox's rows: PUBACK'd (``delivered``), acknowledged by
the hub (deleted), overdue (sent again with a doubling wait), requeued after a reconnect.

Why a row stays after the broker's PUBACK: a PUBACK is one hop. The broker may lose the
message (a restart without persistence, a hub session that was not persistent), and the
hub may refuse or fail to store it; only the hub's ``HubAckV1`` says the event is safe,
so only that deletes it (as Azure IoT Edge's hub keeps messages until upstream has them).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable

from cloud_sync.outbox.row import Row


class DeliveryMixin:
    _db: sqlite3.Connection
    _lock: threading.Lock
    _synchronous: str
    _depth: int
    _bytes: int

    def mark_delivered(self, ranges: Iterable[tuple[int, int]], when: float | None = None) -> int:
        """The broker has these rows (PUBACK): keep them, stamped, until the hub acks."""
        ranges = list(ranges)
        if not ranges:
            return 0
        at = time.time() if when is None else when
        with self._lock:
            return self._fast_write(
                "UPDATE events SET delivered=? WHERE seq BETWEEN ? AND ?",
                [(at, a, b) for a, b in ranges],
            )

    def requeue_recent(self, since: float) -> int:
        """Rows the broker took at or after ``since`` (epoch s) go back to "not delivered".

        Called on every new connection: the device's session starts clean, so a hub ack
        published while it was away is gone; these rows are sent again (the hub drops the
        repeats by event id and acknowledges them again). Older unacked rows are left to
        ``take_overdue``'s backoff, so a hub that is down does not cost a full resend of
        the backlog on every reconnect."""
        with self._lock:
            return self._fast_write(
                "UPDATE events SET delivered=NULL WHERE delivered >= ?", [(since,)]
            )

    def take_overdue(self, timeout_s: float, limit: int) -> list[Row]:
        """Rows the broker had for longer than their hub-ack deadline, oldest first, stamped
        as sent again now. The deadline doubles with each resend (``timeout_s`` · 2^attempts,
        at most 32×), so a hub that is down for hours costs a few resends, not a flood."""
        now = time.time()
        with self._lock:
            got = self._db.execute(
                "SELECT seq, boot_id, created, payload FROM events WHERE delivered IS NOT NULL "
                "AND delivered + ? * (1 << MIN(attempts, 5)) < ? ORDER BY seq LIMIT ?",
                (timeout_s, now, limit),
            ).fetchall()
            rows = [Row(int(s), str(b), float(c), str(p)) for s, b, c, p in got]
            if rows:
                self._fast_write(
                    "UPDATE events SET delivered=?, attempts=attempts+1 WHERE seq=?",
                    [(now, r.seq) for r in rows],
                )
        return rows

    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the acknowledged ``[first, last]`` ranges in one transaction."""
        ranges = list(ranges)
        if not ranges:
            return 0
        with self._lock:
            n, freed = 0, 0
            for first, last in ranges:
                c, b = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM events "
                    "WHERE seq BETWEEN ? AND ?",
                    (first, last),
                ).fetchone()
                n += int(c)
                freed += int(b)
            if n:
                self._fast_write(
                    "DELETE FROM events WHERE seq BETWEEN ? AND ?", [(a, b) for a, b in ranges]
                )
            self._depth -= n
            self._bytes -= freed
        return n

    def _fast_write(self, sql: str, params: list[tuple[float | int, ...]]) -> int:
        """One transaction without the fsync (lock held): losing it only means a resend,
        which the hub drops by event id; the next FULL commit syncs the WAL up to it."""
        db = self._db
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.executemany(sql, params)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return max(0, cur.rowcount)
        finally:
            db.execute(f"PRAGMA synchronous={self._synchronous}")
