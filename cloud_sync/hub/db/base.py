"""The store every engine shares: one schema and one set of queries (SQLite, PostgreSQL).

Events are keyed by their
UUIDv7 ``id`` and inserted with ``ON CONFLICT DO NOTHING``, so a redelivered
batch, or one seen by two workers, is stored once. ``n`` is the insertion
order; the feed and cursor pagination use it. Gaps are computed from the stored
sequence numbers at query time, so late or out-of-order batches (two workers
splitting one device's traffic) close the gap they fill without bookkeeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cloud_sync.hub.db import gaps as gapsmod
from cloud_sync.hub.db import render
from cloud_sync.hub.db.render import iso, num
from cloud_sync.hub.errors import QueryError, StoreError
from cloud_sync.hub.validate import Reply
from cloud_sync.schema import EventBatchV1, StatusV1, TelemetryV1
from edge.wire import is_device_id

MAX_PAGE = 1000


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> object: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> object: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


# {pk}: the auto-increment key; {real}: double; {big}: 64-bit int. One schema, two dialects.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE events (
                n {pk}, id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, boot_id TEXT NOT NULL,
                seq {big} NOT NULL, stream TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
                score {real} NOT NULL, phase TEXT NOT NULL, started_at {real} NOT NULL,
                ts {real} NOT NULL, box TEXT, track_id {big}, model_name TEXT NOT NULL,
                model_version TEXT NOT NULL, model_sha256 TEXT NOT NULL,
                latency_ms {real} NOT NULL, received_at {real} NOT NULL)""",
            "CREATE INDEX events_device_seq ON events (device_id, seq)",
            "CREATE INDEX events_device_n ON events (device_id, n)",
            "CREATE INDEX events_label_n ON events (label, n)",
            "CREATE INDEX events_ts ON events (ts)",
            """CREATE TABLE devices (
                device_id TEXT PRIMARY KEY, first_seen {real} NOT NULL, last_seen {real} NOT NULL,
                state TEXT NOT NULL DEFAULT 'unknown', state_at {real}, boot_id TEXT,
                version TEXT, last_telemetry TEXT, last_event_at {real})""",
            """CREATE TABLE boots (
                device_id TEXT NOT NULL, boot_id TEXT NOT NULL, first_seq {big} NOT NULL,
                last_seq {big} NOT NULL, first_seen {real} NOT NULL, last_seen {real} NOT NULL,
                PRIMARY KEY (device_id, boot_id))""",
            """CREATE TABLE telemetry (
                device_id TEXT NOT NULL, ts {real} NOT NULL, boot_id TEXT NOT NULL,
                fps {real}, inference_ms {real}, cpu_percent {real}, rss_mb {real},
                outbox_depth {big}, dropped {big}, doc TEXT NOT NULL,
                PRIMARY KEY (device_id, ts))""",
            "CREATE INDEX telemetry_ts ON telemetry (ts)",
            """CREATE TABLE commands (
                id TEXT PRIMARY KEY, device_id TEXT NOT NULL, name TEXT NOT NULL,
                args TEXT NOT NULL, sent_at {real} NOT NULL, replied_at {real}, ok INTEGER,
                reply TEXT)""",
            "CREATE INDEX commands_device ON commands (device_id, sent_at)",
        ],
    ),
    (
        2,
        [
            # What could not be stored: kept for an operator, one row per distinct payload
            # (a device resending the same bad batch bumps ``count``, it does not add rows).
            """CREATE TABLE quarantine (
                n {pk}, digest TEXT NOT NULL UNIQUE, reason TEXT NOT NULL, detail TEXT NOT NULL,
                topic TEXT NOT NULL, device_id TEXT, payload {blob} NOT NULL,
                payload_bytes {big} NOT NULL, first_at {real} NOT NULL, last_at {real} NOT NULL,
                count {big} NOT NULL)""",
            "CREATE INDEX quarantine_device ON quarantine (device_id, n)",
            # Status births: a boot's first seq and whether it found its outbox lost (gaps).
            """CREATE TABLE births (
                device_id TEXT NOT NULL, boot_id TEXT NOT NULL, epoch {big}, seq_start {big},
                outbox_reset INTEGER NOT NULL, seen_at {real} NOT NULL,
                PRIMARY KEY (device_id, boot_id))""",
        ],
    ),
]

QUARANTINE_PAYLOAD_MAX = 64 * 1024
"""Bytes of a quarantined payload that are kept (``payload_bytes`` is the full size)."""
QUARANTINE_PAGE_MAX = 200


def _clean(text: str, limit: int) -> str:
    """Text a TEXT column takes on both engines (PostgreSQL refuses NUL), bounded."""
    return text.replace("\x00", "\ufffd")[:limit]


@dataclass(frozen=True)
class QuarantineItem:
    """A message (or one event of a batch) that could not be stored."""

    reason: str  # a validate.RejectReason, or "store_failed"
    detail: str
    topic: str
    payload: bytes
    device_id: str | None = None


@dataclass(frozen=True)
class EventQuery:
    device: str | None = None
    label: str | None = None
    kind: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: int | None = None
    limit: int = 100
    order: str = "desc"


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    stored_ids: list[str] = field(default_factory=list)


def parse_time(name: str, value: str) -> float:
    """Epoch seconds or RFC 3339; a bad value is a ``QueryError`` naming the parameter."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}: {value!r} is neither epoch seconds nor RFC 3339") from None
    if dt.tzinfo is None:
        raise QueryError(f"{name}: {value!r} has no time zone; add Z or +00:00") from None
    return dt.timestamp()


EVENT_COLS = (
    "n, id, device_id, boot_id, seq, stream, kind, label, score, phase, started_at, ts, box,"
    " track_id, model_name, model_version, model_sha256, latency_ms, received_at"
)


def event_row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "n": r[0],
        "id": r[1],
        "device_id": r[2],
        "boot_id": r[3],
        "seq": r[4],
        "stream": r[5],
        "kind": r[6],
        "label": r[7],
        "score": num(r[8]),
        "phase": r[9],
        "started_at": iso(r[10]),
        "ts": iso(r[11]),
        "box": render.doc(r[12]),
        "track_id": r[13],
        "model": {"name": r[14], "version": r[15], "sha256": r[16]},
        "latency_ms": num(r[17]),
        "received_at": iso(r[18]),
    }


class Store:
    """The queries; subclasses give the connection, the dialect and the key type."""

    url: str
    pk = ""
    blob = "BLOB"
    greatest = "max"
    least = "min"

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self.unreadable: Counter[str] = Counter()
        """Stored rows skipped by a reader because they cannot be served, by table."""

    def _skipper(self, table: str) -> Any:
        def skip() -> None:
            with self._conns_lock:
                self.unreadable[table] += 1

        return skip

    def is_transient(self, exc: BaseException) -> bool:
        """True for a failure of the database itself (connection lost, locked, disk full):
        retry the same write later. False: this data cannot be stored (quarantine it)."""
        return isinstance(exc, StoreError)

    # --- engine specifics ------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _bucket(self, expr: str) -> str:
        return f"CAST({expr} AS INTEGER)"

    def _lock_migrations(self, cur: Cursor) -> None:
        """Serialise concurrent migrations (two workers starting at once)."""

    # --- plumbing --------------------------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _drop_conn(self) -> None:
        """Forget this thread's connection (broken): the next call opens a new one."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            with contextlib.suppress(Exception):  # it is broken already
                conn.close()

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        conn = self._conn()
        try:
            cur = conn.cursor()
        except Exception:
            self._drop_conn()
            raise
        try:
            yield cur
            conn.commit()
        except BaseException as e:
            try:
                conn.rollback()
            except Exception:  # the connection is gone: start afresh next time
                self._drop_conn()
                raise e from None
            if self.is_transient(e):
                self._drop_conn()
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._tx() as cur:
            cur.execute(self._sql(sql), params)
            return cur.fetchall()

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                with contextlib.suppress(Exception):  # already closed or broken: fine here
                    c.close()
            self._conns.clear()
        self._local = threading.local()

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        fmt = {"pk": self.pk, "real": "DOUBLE PRECISION", "big": "BIGINT", "blob": self.blob}
        with self._tx() as cur:
            self._lock_migrations(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
            for version, stmts in MIGRATIONS:
                if version in done:
                    continue
                for s in stmts:
                    cur.execute(s.format(**fmt))
                cur.execute(
                    self._sql("INSERT INTO schema_migrations VALUES (?, ?)"),
                    (version, datetime.now(UTC).timestamp()),
                )
        return MIGRATIONS[-1][0]

    # --- writes ----------------------------------------------------------------------------
    def write(
        self,
        batches: Sequence[EventBatchV1],
        statuses: Sequence[StatusV1] = (),
        telemetry: Sequence[TelemetryV1] = (),
        replies: Sequence[Reply] = (),
        now: float | None = None,
    ) -> WriteResult:
        """Store everything in one transaction; events already stored are skipped."""
        t = now if now is not None else datetime.now(UTC).timestamp()
        res = WriteResult()
        rows: list[tuple[Any, ...]] = []
        seen: dict[str, float] = {}
        boots: dict[tuple[str, str], list[int]] = {}
        for b in batches:
            seen[b.device_id] = t
            for e in b.events:
                rows.append(
                    (
                        e.id, e.device_id, e.boot_id, e.seq, e.stream, e.kind, e.label, e.score,
                        e.phase, e.started_at.timestamp(), e.ts.timestamp(),
                        json.dumps(e.box) if e.box is not None else None, e.track_id,
                        e.model.name, e.model.version, e.model.sha256, e.latency_ms, t,
                    )
                )  # fmt: skip
                k = (e.device_id, e.boot_id)
                lo_hi = boots.setdefault(k, [e.seq, e.seq])
                lo_hi[0] = min(lo_hi[0], e.seq)
                lo_hi[1] = max(lo_hi[1], e.seq)
        for s in statuses:
            seen[s.device_id] = t
        for m in telemetry:
            seen[m.device_id] = t
        g = self.greatest
        with self._tx() as cur:
            if seen:
                cur.executemany(
                    self._sql(
                        "INSERT INTO devices (device_id, first_seen, last_seen) VALUES (?, ?, ?)"
                        f" ON CONFLICT (device_id) DO UPDATE SET"
                        f" last_seen = {g}(devices.last_seen, excluded.last_seen)"
                    ),
                    [(d, ts, ts) for d, ts in sorted(seen.items())],
                )
            if rows:
                cur.executemany(
                    self._sql(
                        f"INSERT INTO events ({EVENT_COLS.split(', ', 1)[1]}) VALUES"
                        f" ({', '.join('?' * 18)}) ON CONFLICT (id) DO NOTHING"
                    ),
                    rows,
                )
                res.stored = self._inserted(cur, len(rows))
                res.duplicates = len(rows) - res.stored
                cur.executemany(
                    self._sql(
                        "INSERT INTO boots VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
                        f" (device_id, boot_id) DO UPDATE SET"
                        f" first_seq = {self.least}(boots.first_seq, excluded.first_seq),"
                        f" last_seq = {g}(boots.last_seq, excluded.last_seq),"
                        " last_seen = excluded.last_seen"
                    ),
                    [(d, bid, lo, hi, t, t) for (d, bid), (lo, hi) in sorted(boots.items())],
                )
                cur.executemany(
                    self._sql("UPDATE devices SET last_event_at = ? WHERE device_id = ?"),
                    [(t, d) for d in sorted({b.device_id for b in batches})],
                )
            for s in statuses:
                cur.execute(
                    self._sql(
                        "UPDATE devices SET state = ?, state_at = ?,"
                        " boot_id = COALESCE(?, boot_id), version = COALESCE(?, version)"
                        " WHERE device_id = ?"
                    ),
                    (s.state, s.ts.timestamp() if s.ts else t, s.boot_id, s.version, s.device_id),
                )
                if s.boot_id is not None and (s.seq_start is not None or s.outbox_reset):
                    cur.execute(
                        self._sql(
                            "INSERT INTO births VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
                            " (device_id, boot_id) DO UPDATE SET epoch = excluded.epoch,"
                            " seq_start = excluded.seq_start,"
                            " outbox_reset = excluded.outbox_reset"
                        ),
                        (s.device_id, s.boot_id, s.epoch, s.seq_start, int(s.outbox_reset), t),
                    )
            for m in telemetry:
                doc = m.model_dump_json()
                fps = sum(s.fps_processed for s in m.streams.values()) if m.streams else None
                inf = (
                    sum(d.inference_ms for d in m.detectors.values()) / len(m.detectors)
                    if m.detectors
                    else None
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (device_id, ts) DO NOTHING"
                    ),
                    (
                        m.device_id, m.ts.timestamp(), m.boot_id, fps, inf, m.cpu_percent,
                        m.rss_mb, m.outbox.depth, m.outbox.dropped, doc,
                    ),
                )  # fmt: skip
                cur.execute(
                    self._sql("UPDATE devices SET last_telemetry = ? WHERE device_id = ?"),
                    (doc, m.device_id),
                )
            for r in replies:
                cur.execute(
                    self._sql(
                        "UPDATE commands SET replied_at = ?, ok = ?, reply = ?"
                        " WHERE id = ? AND device_id = ?"
                    ),
                    (t, int(r.reply.ok), r.reply.model_dump_json(), r.reply.id, r.device_id),
                )
        return res

    def _inserted(self, cur: Cursor, attempted: int) -> int:
        return max(cur.rowcount, 0)

    def quarantine(self, items: Sequence[QuarantineItem], now: float | None = None) -> None:
        """Keep what could not be stored, in one transaction; a payload seen again bumps
        its row's ``count`` and ``last_at``."""
        if not items:
            return
        t = now if now is not None else datetime.now(UTC).timestamp()
        rows = []
        for q in items:
            digest = hashlib.sha256(q.topic.encode(errors="replace") + b"\0" + q.payload)
            dev = q.device_id if q.device_id is not None and is_device_id(q.device_id) else None
            rows.append(
                (
                    digest.hexdigest(), _clean(q.reason, 64), _clean(q.detail, 500),
                    _clean(q.topic, 1024), dev, q.payload[:QUARANTINE_PAYLOAD_MAX],
                    len(q.payload), t, t, 1,
                )
            )  # fmt: skip
        with self._tx() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO quarantine (digest, reason, detail, topic, device_id, payload,"
                    " payload_bytes, first_at, last_at, count)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (digest) DO UPDATE SET count = quarantine.count + 1,"
                    " last_at = excluded.last_at"
                ),
                rows,
            )

    def quarantined(
        self, device: str | None = None, cursor: int | None = None, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; the next page's cursor (None: last page)."""
        if not 1 <= limit <= QUARANTINE_PAGE_MAX:
            raise QueryError(f"limit: {limit} is outside 1..{QUARANTINE_PAGE_MAX}")
        where: list[str] = []
        params: list[Any] = []
        if device is not None:
            where.append("device_id = ?")
            params.append(device)
        if cursor is not None:
            where.append("n < ?")
            params.append(cursor)
        sql = (
            "SELECT n, reason, detail, topic, device_id, payload, payload_bytes, first_at,"
            " last_at, count FROM quarantine"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        raw = self._rows(sql + " ORDER BY n DESC LIMIT ?", (*params, limit + 1))

        def one(r: Sequence[Any]) -> dict[str, Any]:
            payload = bytes(r[5])
            return {
                "n": r[0], "reason": r[1], "detail": r[2], "topic": r[3], "device_id": r[4],
                "payload": payload.decode("utf-8", errors="replace"),
                "payload_bytes": r[6], "truncated": r[6] > len(payload),
                "first_at": iso(r[7]), "last_at": iso(r[8]), "count": r[9],
            }  # fmt: skip

        page = render.rows(raw[:limit], one, self._skipper("quarantine"))
        nxt = int(raw[limit - 1][0]) if len(raw) > limit else None
        return page, nxt

    def quarantine_count(self) -> int:
        """Distinct quarantined payloads."""
        return int(self._rows("SELECT count(*) FROM quarantine")[0][0])

    def add_command(self, cmd_id: str, device_id: str, name: str, args: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO commands (id, device_id, name, args, sent_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                ),
                (cmd_id, device_id, name, json.dumps(args), datetime.now(UTC).timestamp()),
            )

    def prune(self, older_than: float) -> int:
        """Delete events and telemetry captured before ``older_than``; returns events deleted."""
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM events WHERE ts < ?"), (older_than,))
            n = max(cur.rowcount, 0)
            cur.execute(self._sql("DELETE FROM telemetry WHERE ts < ?"), (older_than,))
        return n

    # --- reads -----------------------------------------------------------------------------
    def count_events(self, device: str | None = None) -> int:
        if device is None:
            return int(self._rows("SELECT count(*) FROM events")[0][0])
        return int(self._rows("SELECT count(*) FROM events WHERE device_id = ?", (device,))[0][0])

    def devices(self) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT d.device_id, d.first_seen, d.last_seen, d.state, d.state_at, d.boot_id,"
            " d.version, d.last_telemetry, d.last_event_at,"
            " (SELECT count(*) FROM events e WHERE e.device_id = d.device_id)"
            " FROM devices d ORDER BY d.device_id"
        )
        skip = self._skipper("devices")

        def one(r: Sequence[Any]) -> dict[str, Any]:
            try:
                tel = render.doc(r[7])
            except render.UnreadableError:  # the device stays listed; only its last telemetry goes
                skip()
                tel = None
            return {
                "device_id": r[0],
                "first_seen": iso(r[1]),
                "last_seen": iso(r[2]),
                "state": r[3],
                "state_at": iso(r[4]),
                "boot_id": r[5],
                "version": r[6],
                "telemetry": tel,
                "last_event_at": iso(r[8]),
                "events": int(r[9]),
            }

        return render.rows(rows, one, skip)

    def device(self, device_id: str) -> dict[str, Any] | None:
        found = [d for d in self.devices() if d["device_id"] == device_id]
        if not found:
            return None
        d = found[0]
        d["boots"] = render.rows(
            self._rows(
                "SELECT boot_id, first_seq, last_seq, first_seen, last_seen FROM boots"
                " WHERE device_id = ? ORDER BY first_seen",
                (device_id,),
            ),
            lambda r: {"boot_id": r[0], "first_seq": r[1], "last_seq": r[2],
                       "first_seen": iso(r[3]), "last_seen": iso(r[4])},
            self._skipper("boots"),
        )  # fmt: skip
        return d

    def events(self, q: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
        """A page of events in insertion order and the cursor of the next page (None: last)."""
        if not 1 <= q.limit <= MAX_PAGE:
            raise QueryError(f"limit: {q.limit} is outside 1..{MAX_PAGE}")
        if q.order not in ("asc", "desc"):
            raise QueryError(f"order: {q.order!r} must be asc or desc")
        where: list[str] = []
        params: list[Any] = []
        for col, val in (("device_id", q.device), ("label", q.label), ("kind", q.kind)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if q.since is not None:
            where.append("ts >= ?")
            params.append(q.since)
        if q.until is not None:
            where.append("ts < ?")
            params.append(q.until)
        if q.cursor is not None:
            where.append("n < ?" if q.order == "desc" else "n > ?")
            params.append(q.cursor)
        sql = f"SELECT {EVENT_COLS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY n {q.order.upper()} LIMIT ?"
        rows = self._rows(sql, (*params, q.limit + 1))
        page = render.rows(rows[: q.limit], event_row, self._skipper("events"))
        # the cursor is the last row's number, readable or not, so paging moves past it
        nxt = int(rows[q.limit - 1][0]) if len(rows) > q.limit else None
        return page, nxt

    def events_after(self, n: int, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Events numbered above ``n`` and the highest number read: a page of unreadable
        rows still moves the reader on (the live feed must never stop on one)."""
        rows = self._rows(
            f"SELECT {EVENT_COLS} FROM events WHERE n > ? ORDER BY n LIMIT ?", (n, limit)
        )
        last = int(rows[-1][0]) if rows else n
        return render.rows(rows, event_row, self._skipper("events")), last

    def events_in(self, ns: Sequence[int]) -> list[dict[str, Any]]:
        if not ns:
            return []
        marks = ", ".join("?" * len(ns))
        rows = self._rows(f"SELECT {EVENT_COLS} FROM events WHERE n IN ({marks}) ORDER BY n", ns)
        return render.rows(rows, event_row, self._skipper("events"))

    def last_n(self) -> int:
        return int(self._rows("SELECT COALESCE(max(n), 0) FROM events")[0][0])

    def gaps(self, device: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Missing ``seq`` ranges per device, from seq 0 up to the highest stored seq.

        ``cause`` is ``outbox_reset`` for seqs below a boot whose status birth said its
        outbox was lost (lost at the device), else ``in_transit`` (see ``db.gaps``)."""
        where, params = ("WHERE device_id = ?", [device]) if device else ("", [])
        rows = self._rows(
            "SELECT device_id, COALESCE(prev, -1) + 1, seq - 1, prev_ts, ts FROM ("
            " SELECT device_id, seq, ts,"
            "  LAG(seq) OVER (PARTITION BY device_id ORDER BY seq) AS prev,"
            "  LAG(ts) OVER (PARTITION BY device_id ORDER BY seq) AS prev_ts"
            f" FROM events {where}) t WHERE seq > COALESCE(prev, -1) + 1"
            " ORDER BY device_id, seq LIMIT ?",
            (*params, limit),
        )
        births: dict[str, list[gapsmod.Birth]] = {}
        for b in self._rows(
            "SELECT device_id, boot_id, seq_start, outbox_reset FROM births"
            f" {where}"
            " ORDER BY device_id, seq_start",
            params,
        ):
            if b[2] is not None:
                births.setdefault(b[0], []).append(gapsmod.Birth(b[1], int(b[2]), bool(b[3])))
        out: list[dict[str, Any]] = []
        skip = self._skipper("events")
        for r in rows:
            try:
                after, before = iso(r[3]), iso(r[4])
            except render.UnreadableError:
                skip()
                after = before = None
            hole = gapsmod.Hole(int(r[1]), int(r[2]), r[3], r[4])
            for first, last, cause, boot in gapsmod.split(hole, births.get(r[0], [])):
                out.append(
                    {"device_id": r[0], "from_seq": first, "to_seq": last,
                     "missing": last - first + 1, "cause": cause, "boot_id": boot,
                     "after_ts": after, "before_ts": before}
                )  # fmt: skip
        return out[:limit]

    def telemetry(self, device: str, since: float, limit: int = 2000) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT ts, fps, inference_ms, cpu_percent, rss_mb, outbox_depth, dropped FROM"
            " (SELECT * FROM telemetry WHERE device_id = ? AND ts >= ? ORDER BY ts DESC LIMIT ?)"
            " t ORDER BY ts",
            (device, since, limit),
        )
        keys = ("fps", "inference_ms", "cpu_percent", "rss_mb", "outbox_depth", "dropped")
        return render.rows(
            rows,
            lambda r: {"ts": iso(r[0]), **{k: num(v) for k, v in zip(keys, r[1:], strict=True)}},
            self._skipper("telemetry"),
        )

    def label_counts(
        self, since: float, bucket_s: int, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Events per label per time bucket (bucket start in epoch seconds)."""
        b = self._bucket("ts / ?")
        where = "ts >= ?"
        params: list[Any] = [bucket_s, since]
        if device:
            where += " AND device_id = ?"
            params.append(device)
        rows = self._rows(
            f"SELECT label, {b} AS bucket, count(*) FROM events WHERE {where}"
            " GROUP BY label, bucket ORDER BY bucket, label",
            params,
        )
        return render.rows(
            rows,
            lambda r: {"label": r[0], "t": int(r[1]) * bucket_s, "count": int(r[2])},
            self._skipper("events"),
        )

    def commands(self, device: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT id, name, args, sent_at, replied_at, ok, reply FROM commands"
            " WHERE device_id = ? ORDER BY sent_at DESC LIMIT ?",
            (device, limit),
        )
        return render.rows(
            rows,
            lambda r: {"id": r[0], "name": r[1], "args": render.doc(r[2]) or {},
                       "sent_at": iso(r[3]), "replied_at": iso(r[4]),
                       "ok": None if r[5] is None else bool(r[5]), "reply": render.doc(r[6])},
            self._skipper("commands"),
        )  # fmt: skip
