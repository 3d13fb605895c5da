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
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cloud_sync.hub.errors import QueryError
from cloud_sync.hub.validate import Reply
from cloud_sync.schema import EventBatchV1, StatusV1, TelemetryV1

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
]


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


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        "score": r[8],
        "phase": r[9],
        "started_at": iso(r[10]),
        "ts": iso(r[11]),
        "box": json.loads(r[12]) if r[12] else None,
        "track_id": r[13],
        "model": {"name": r[14], "version": r[15], "sha256": r[16]},
        "latency_ms": r[17],
        "received_at": iso(r[18]),
    }


class Store:
    """The queries; subclasses give the connection, the dialect and the key type."""

    url: str
    pk = ""
    greatest = "max"
    least = "min"

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()

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

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        conn = self._conn()
        cur = conn.cursor()
        try:
            yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
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
        fmt = {"pk": self.pk, "real": "DOUBLE PRECISION", "big": "BIGINT"}
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
        return [
            {
                "device_id": r[0],
                "first_seen": iso(r[1]),
                "last_seen": iso(r[2]),
                "state": r[3],
                "state_at": iso(r[4]),
                "boot_id": r[5],
                "version": r[6],
                "telemetry": json.loads(r[7]) if r[7] else None,
                "last_event_at": iso(r[8]),
                "events": int(r[9]),
            }
            for r in rows
        ]

    def device(self, device_id: str) -> dict[str, Any] | None:
        found = [d for d in self.devices() if d["device_id"] == device_id]
        if not found:
            return None
        d = found[0]
        d["boots"] = [
            {"boot_id": r[0], "first_seq": r[1], "last_seq": r[2], "first_seen": iso(r[3]),
             "last_seen": iso(r[4])}
            for r in self._rows(
                "SELECT boot_id, first_seq, last_seq, first_seen, last_seen FROM boots"
                " WHERE device_id = ? ORDER BY first_seen",
                (device_id,),
            )
        ]  # fmt: skip
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
        page = [event_row(r) for r in rows[: q.limit]]
        nxt = page[-1]["n"] if len(rows) > q.limit else None
        return page, nxt

    def events_after(self, n: int, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT {EVENT_COLS} FROM events WHERE n > ? ORDER BY n LIMIT ?", (n, limit)
        )
        return [event_row(r) for r in rows]

    def events_in(self, ns: Sequence[int]) -> list[dict[str, Any]]:
        if not ns:
            return []
        marks = ", ".join("?" * len(ns))
        rows = self._rows(f"SELECT {EVENT_COLS} FROM events WHERE n IN ({marks}) ORDER BY n", ns)
        return [event_row(r) for r in rows]

    def last_n(self) -> int:
        return int(self._rows("SELECT COALESCE(max(n), 0) FROM events")[0][0])

    def gaps(self, device: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Missing ``seq`` ranges between stored events, per device."""
        where, params = ("WHERE device_id = ?", [device]) if device else ("", [])
        rows = self._rows(
            "SELECT device_id, prev + 1, seq - 1, prev_ts, ts FROM ("
            " SELECT device_id, seq, ts,"
            "  LAG(seq) OVER (PARTITION BY device_id ORDER BY seq) AS prev,"
            "  LAG(ts) OVER (PARTITION BY device_id ORDER BY seq) AS prev_ts"
            f" FROM events {where}) t WHERE seq > prev + 1 ORDER BY device_id, prev LIMIT ?",
            (*params, limit),
        )
        return [
            {"device_id": r[0], "from_seq": r[1], "to_seq": r[2], "missing": r[2] - r[1] + 1,
             "after_ts": iso(r[3]), "before_ts": iso(r[4])}
            for r in rows
        ]  # fmt: skip

    def telemetry(self, device: str, since: float, limit: int = 2000) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT ts, fps, inference_ms, cpu_percent, rss_mb, outbox_depth, dropped FROM"
            " (SELECT * FROM telemetry WHERE device_id = ? AND ts >= ? ORDER BY ts DESC LIMIT ?)"
            " t ORDER BY ts",
            (device, since, limit),
        )
        keys = ("fps", "inference_ms", "cpu_percent", "rss_mb", "outbox_depth", "dropped")
        return [{"ts": iso(r[0]), **dict(zip(keys, r[1:], strict=True))} for r in rows]

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
        return [{"label": r[0], "t": int(r[1]) * bucket_s, "count": int(r[2])} for r in rows]

    def commands(self, device: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT id, name, args, sent_at, replied_at, ok, reply FROM commands"
            " WHERE device_id = ? ORDER BY sent_at DESC LIMIT ?",
            (device, limit),
        )
        return [
            {"id": r[0], "name": r[1], "args": json.loads(r[2]), "sent_at": iso(r[3]),
             "replied_at": iso(r[4]), "ok": None if r[5] is None else bool(r[5]),
             "reply": json.loads(r[6]) if r[6] else None}
            for r in rows
        ]  # fmt: skip
