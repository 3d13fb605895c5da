"""The snapshot store: event JPEGs committed to their own SQLite file before they are
published on ``<prefix>/<device>/snapshots``, deleted on the broker's PUBACK.

A separate file beside the events outbox (``sync.outbox.snapshot_path``), for two reasons:
a 100 KiB blob's fsync and the writer lock never make an event append wait, and a damaged
snapshot file never costs an event (it is moved aside and recreated; the outbox is not
touched). Same durability as the outbox: WAL with ``synchronous=FULL``, so a snapshot
``put`` has returned for survives ``kill -9`` and a power cut.

What is stored is the wire message itself (``encode_snapshot``), built here at the
producer: a snapshot the hub would refuse (too big, not a JPEG, a bad event id) is refused
now, counted per reason and logged once per reason, and never committed.

Bounded by ``max_bytes`` (``sync.outbox.snapshot_max_bytes``), a budget apart from the
events' ``max_bytes``: when a new snapshot does not fit, the oldest snapshots go first
(counted, logged at most every 5 s). A picture can never push out an event.

``put`` never raises: a failed commit (disk full, I/O error) counts the snapshot as lost and
turns ``health()`` red (not fatal) until a commit succeeds again. Pictures never take the
last free space of the disk from the events: a put that would leave less than
``DISK_RESERVE`` free is not tried (lost, counted), and the WAL a failed commit grew is
truncated again (best effort: a checkpoint that itself needs space cannot). Unique by
``(event_id, kind)``: a second put of one is ignored (the hub keeps the first one too).
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from cloud_sync.outbox.recover import move_aside
from cloud_sync.schema import SnapshotError, SnapshotHeaderV1, encode_snapshot
from edge.compat import UTC
from edge.snapshots import Snapshot
from edge.supervise import ComponentHealth

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DISK_RESERVE = 1024 * 1024
"""Free bytes a snapshot commit leaves on the disk (beyond twice its own size: WAL, then
checkpoint), for the events outbox beside it."""
MAX_REASONS = 32
"""Refusal reasons counted apart; further ones are counted as "other"."""
REOPEN_EVERY_S = 10.0
"""A store that could not be opened at all is tried again on a put at most this often."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    message BLOB NOT NULL,  -- the wire message: EWS1, header length, header, JPEG
    UNIQUE (event_id, kind)
);
"""

_TOTALS = ("dropped", "lost", "refused", "sent")


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    event_id: str
    kind: str
    message: bytes


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    queued: int
    bytes: int
    sent: int  # PUBACK'd and deleted, this boot
    dropped: int  # pushed out by newer snapshots (size bound), this boot
    lost: int  # failed commits (disk full, I/O error, store unusable), this boot
    refused: int  # refused at the producer (the hub would refuse them too), this boot
    duplicates: int = 0  # a second put of one (event_id, kind), ignored
    reset: bool = False  # the file was damaged at open and recreated
    refused_reasons: dict[str, int] = field(default_factory=dict)


def encode(snapshot: Snapshot, device_id: str) -> bytes:
    """The wire message for ``snapshot``; ``SnapshotError`` / ``ValidationError`` for one
    the hub would refuse."""
    header = SnapshotHeaderV1.model_validate(
        {
            "v": 1,
            "device_id": device_id,
            "event_id": snapshot.event_id,
            "stream": snapshot.stream,
            "kind": snapshot.kind,
            "ts": datetime.fromtimestamp(snapshot.ts, UTC),
            "width": snapshot.width,
            "height": snapshot.height,
            "bytes": len(snapshot.jpeg),
            "box": list(snapshot.box) if snapshot.box is not None else None,
        }
    )
    return encode_snapshot(header, bytes(snapshot.jpeg))


def refusal(exc: BaseException) -> tuple[str, str]:
    """(the counter's key, the message to log): keys stay few (no numbers, no values)."""
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "header"
        return f"{where}: {err['type']}", f"{where}: {err['msg']}"
    text = str(exc)
    return re.sub(r"\d+", "N", text), text


class SnapshotStore:
    """A bounded, durable queue of snapshot messages for one device."""

    def __init__(self, path: Path, device_id: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.device_id = device_id
        self.max_bytes = max_bytes
        self.disk_reserve = DISK_RESERVE  # 0: no check (tests of a real SQLITE_FULL)
        self._lock = threading.Lock()
        self._rlock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._db: sqlite3.Connection | None = None
        self._rdb: sqlite3.Connection | None = None
        self._count = {k: 0 for k in _TOTALS}
        self._base = dict.fromkeys(_TOTALS, 0)  # lifetime totals at open
        self._saved = dict.fromkeys(_TOTALS, 0)  # this boot's counts as of the last commit
        self.duplicates = 0
        self.refused_reasons: dict[str, int] = {}
        self.last_error: str | None = None  # the last failure, until a commit succeeds
        self.reset_reason: str | None = None
        self.moved_aside: Path | None = None
        self._queued = 0
        self._bytes = 0
        self._last_full_log = 0.0
        self._last_open_try = 0.0
        self._closed = False
        self._open()

    # --- opening ----------------------------------------------------------------------------

    def _open(self) -> None:
        self._last_open_try = time.monotonic()
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = _connect(self.path)
            except sqlite3.OperationalError:  # locked, cannot open, I/O: not damage
                raise
            except sqlite3.DatabaseError as exc:  # not a database, malformed
                db = self._recreate(str(exc))
            count, nbytes = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0) FROM snapshots"
            ).fetchone()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            # the sender reads on its own connection: WAL lets it read during a put's fsync
            rdb = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()
            self.last_error = f"cannot open ({_cause(exc)})"
            log.error(
                "%s: cannot open the snapshot store (%s): snapshots are counted as lost until "
                "it opens; events are not affected", self.path, _cause(exc),
            )  # fmt: skip
            return
        try:  # an empty WAL: a failed commit's frames are then all a checkpoint takes back
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.debug("%s: no checkpoint at open: %s", self.path, exc)
        self._db, self._rdb = db, rdb
        self._queued, self._bytes = int(count), int(nbytes)
        self._base = {k: int(meta.get(f"{k}_total", 0)) for k in _TOTALS}
        self._saved = dict(self._count)
        self.last_error = None

    def _recreate(self, problem: str) -> sqlite3.Connection:
        aside = move_aside(self.path)
        self.moved_aside = aside
        self.reset_reason = f"damaged ({problem}); moved aside to {aside.name}"
        log.error(
            "%s: the snapshot store is damaged (%s); moved aside to %s (kept, never deleted) "
            "and started a new one; its snapshots are not sent", self.path, problem, aside.name,
        )  # fmt: skip
        return _connect(self.path)

    # --- the producer -----------------------------------------------------------------------

    def add_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called after each commit that added a snapshot (the publisher wakes)."""
        self._listeners.append(fn)

    def put(self, snapshot: Snapshot) -> bool:
        """Encode and commit ``snapshot`` (durable on return); True if it was stored. Never
        raises: refused, duplicate and lost snapshots are counted (``stats``)."""
        try:
            message = encode(snapshot, self.device_id)
        except (ValidationError, SnapshotError, ValueError, TypeError, OverflowError) as exc:
            self._refuse(exc)
            return False
        if len(message) > self.max_bytes:
            self._refuse(SnapshotError("bigger than sync.outbox.snapshot_max_bytes"))
            return False
        with self._lock:
            due = time.monotonic() - self._last_open_try >= REOPEN_EVERY_S
            if self._db is None and due and not self._closed:
                self._open()
            if self._db is None:
                self._count["lost"] += 1
                return False
            try:
                self._check_room(len(message))
                added = self._commit(snapshot, message)
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc)
                self._shrink_wal()
                return False
            self.last_error = None
        if added:
            for fn in self._listeners:
                fn()
        return added

    def _commit(self, snapshot: Snapshot, message: bytes) -> bool:
        """One transaction: make room, insert, totals. Called with the lock held."""
        db = self._db
        assert db is not None
        queued, nbytes, dropped = self._queued, self._bytes, self._count["dropped"]
        try:
            db.execute("BEGIN IMMEDIATE")
            self._make_room(db, len(message))
            cur = db.execute(
                "INSERT OR IGNORE INTO snapshots(event_id, kind, created, message) "
                "VALUES (?, ?, ?, ?)",
                (snapshot.event_id, snapshot.kind, time.time(), message),
            )
            added = cur.rowcount == 1
            if self._count != self._saved:
                db.executemany(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    [(f"{k}_total", str(self._base[k] + self._count[k])) for k in _TOTALS],
                )
            db.execute("COMMIT")  # the fsync
            self._saved = dict(self._count)
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.debug("%s: rollback after a failed put: %s", self.path, exc)
            self._queued, self._bytes, self._count["dropped"] = queued, nbytes, dropped
            raise
        if added:
            self._queued += 1
            self._bytes += len(message)
        else:
            self.duplicates += 1
            log.debug("%s: snapshot %s/%s is stored already", self.path, snapshot.event_id,
                      snapshot.kind)  # fmt: skip
        return added

    def _check_room(self, size: int) -> None:
        if self.disk_reserve <= 0:
            return
        free = shutil.disk_usage(self.path.parent).free
        if free < 2 * size + self.disk_reserve:
            raise OSError(
                errno.ENOSPC,
                f"disk nearly full ({free} bytes free; snapshots leave "
                f"{self.disk_reserve} for the events)",
            )

    def _shrink_wal(self) -> None:
        """A failed commit leaves the WAL grown by its frames: give that space back."""
        if self._db is None:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.debug("%s: cannot truncate the WAL after a failed put: %s", self.path, exc)

    def _make_room(self, db: sqlite3.Connection, need: int) -> None:
        """Drop the oldest snapshots until ``need`` more bytes fit (lock held, in the
        transaction: a failed commit rolls the drop back too)."""
        excess = self._bytes + need - self.max_bytes
        if excess <= 0:
            return
        freed, last, n = 0, -1, 0
        for sid, size in db.execute("SELECT id, LENGTH(message) FROM snapshots ORDER BY id"):
            if freed >= excess:
                break
            freed += int(size)
            last = int(sid)
            n += 1
        if not n:
            return
        db.execute("DELETE FROM snapshots WHERE id <= ?", (last,))
        self._queued -= n
        self._bytes -= freed
        self._count["dropped"] += n
        now = time.monotonic()
        if now - self._last_full_log >= 5.0:
            self._last_full_log = now
            log.warning(
                "%s: snapshot store full (snapshot_max_bytes %d): dropped the %d oldest "
                "snapshot(s); %d dropped this boot (events are never dropped for snapshots)",
                self.path, self.max_bytes, n, self._count["dropped"],
            )  # fmt: skip

    def _refuse(self, exc: BaseException) -> None:
        key, text = refusal(exc)
        with self._lock:
            self._count["refused"] += 1
            if key not in self.refused_reasons and len(self.refused_reasons) >= MAX_REASONS:
                key = "other"
            seen = self.refused_reasons.get(key, 0)
            self.refused_reasons[key] = seen + 1
        if not seen:  # once per reason: a broken producer must not flood the log
            log.error("%s: snapshot refused (%s): not stored, not sent; counted in "
                      "telemetry snapshots.refused", self.path, text)  # fmt: skip

    def _failed(self, exc: BaseException) -> None:
        self._count["lost"] += 1
        first = self.last_error is None
        self.last_error = _cause(exc)
        if first or self._count["lost"] % 100 == 0:
            log.error(
                "%s: cannot commit a snapshot (%s): %d snapshot(s) lost this boot; events "
                "are not affected", self.path, self.last_error, self._count["lost"],
            )  # fmt: skip

    # --- the sender -------------------------------------------------------------------------

    def read(self, after_id: int, limit: int) -> list[Stored]:
        """Up to ``limit`` snapshots with ``id > after_id``, oldest first."""
        if self._rdb is None:
            return []
        with self._rlock:
            try:
                rows = self._rdb.execute(
                    "SELECT id, event_id, kind, message FROM snapshots WHERE id > ? "
                    "ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                log.warning("%s: cannot read snapshots: %s", self.path, exc)
                return []
        return [Stored(int(i), str(e), str(k), bytes(m)) for i, e, k, m in rows]

    def delete(self, ids: list[int], *, refused: bool = False) -> int:
        """Forget PUBACK'd snapshots (without the fsync: a lost delete only means a resend,
        which the hub drops by event id and kind). ``refused``: the broker refused them
        (counted as refused, not sent)."""
        if not ids:
            return 0
        with self._lock:
            db = self._db
            if db is None:  # closed
                return 0
            marks = ",".join("?" * len(ids))
            try:
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("BEGIN IMMEDIATE")
                c, b = db.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0) FROM snapshots "  # noqa: S608  placeholders only
                    f"WHERE id IN ({marks})",
                    ids,
                ).fetchone()
                db.execute(f"DELETE FROM snapshots WHERE id IN ({marks})", ids)  # noqa: S608  placeholders only
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                log.warning("%s: cannot delete sent snapshots (%s); they are sent again",
                            self.path, exc)  # fmt: skip
                return 0
            finally:
                db.execute("PRAGMA synchronous=FULL")
            self._queued -= int(c)
            self._bytes -= int(b)
            self._count["refused" if refused else "sent"] += int(c)
        return int(c)

    # --- figures ----------------------------------------------------------------------------

    def pending(self) -> bool:
        """Anything stored (lock-free: the sender asks it on every turn, and must not wait
        on a put's fsync to learn there is nothing to send)."""
        return self._queued > 0

    def stats(self) -> SnapshotStats:
        """Lock-free like ``pending`` (telemetry runs on the sender thread): the figures are
        each exact, read one after another."""
        return SnapshotStats(
            queued=self._queued,
            bytes=self._bytes,
            sent=self._count["sent"],
            dropped=self._count["dropped"],
            lost=self._count["lost"],
            refused=self._count["refused"],
            duplicates=self.duplicates,
            reset=self.reset_reason is not None,
            refused_reasons=self.refused_reasons.copy(),  # one C call: atomic
        )

    def health(self) -> ComponentHealth:
        """Red while commits fail, as a *dependency* (the disk): health says so, but the
        systemd watchdog is still fed, since a restart would not free the disk and would
        stop every stream for the sake of pictures. A note once it recovered or was reset."""
        lost = self._count["lost"]
        if self.last_error is not None:
            return ComponentHealth(
                "sync-snapshots", False,
                f"{self.path}: snapshot commits failing ({self.last_error}); {lost} snapshot(s) "
                "lost this boot; events are not affected", dependency=True,
            )  # fmt: skip
        notes = []
        if lost:
            notes.append(f"recovered; {lost} snapshot(s) lost this boot")
        if self.reset_reason:
            notes.append(f"store reset at start: {self.reset_reason}")
        return ComponentHealth("sync-snapshots", True, "; ".join(notes) or None)

    def close(self) -> None:
        """Later puts are counted as lost (a sink closed by a reload: its successor owns
        the file now)."""
        with self._lock, self._rlock:
            self._closed = True
            if self._rdb is not None:
                self._rdb.close()
                self._rdb = None
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    log.warning("%s: unclean close: %s", self.path, exc)
                self._db.close()
                self._db = None

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    """WAL, FULL, the schema, and a real read of the file (``quick_check``): a file that is
    not SQLite, or is damaged, raises ``sqlite3.DatabaseError`` here."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"SQLite refused WAL mode ({mode})")
        ok = db.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {ok[0] if ok else 'no answer'}")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
