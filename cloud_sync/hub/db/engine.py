"""What every engine shares below the queries: the schema, its migrations, per-thread
connections and transactions. An engine (``db.sqlite``, ``db.postgres``) gives the
connection, the dialect (``_sql``, ``_bucket``) and the key type (``pk``)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from cloud_sync.hub.errors import StoreError
from edge.compat import UTC


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
    (
        3,
        [
            # The hub's own settings that every worker shares and that survive restarts
            # (``db.meta``): the secret its default MQTT client ids are derived from.
            "CREATE TABLE hub_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ],
    ),
    (
        4,
        [
            # Named zones and lines (issue 12): the zones an object is in (a JSON list),
            # the zone an enter / exit is about, the line a cross is about and its direction.
            # NULL in rows stored before: those events came from streams without regions.
            "ALTER TABLE events ADD COLUMN zones TEXT",
            "ALTER TABLE events ADD COLUMN zone TEXT",
            "ALTER TABLE events ADD COLUMN line TEXT",
            "ALTER TABLE events ADD COLUMN direction TEXT",
        ],
    ),
    (
        5,
        [
            # Event snapshots (issue 13): the kinds the device said it took (a JSON list),
            # and the index of what the hub stored, one row per (event, kind). The JPEG is
            # a file (``path``, SQLite) or ``jpeg`` (PostgreSQL: TOASTed out of line, so the
            # index scans of retention stay small); see ``cloud_sync.hub.snapshots``.
            "ALTER TABLE events ADD COLUMN snapshots TEXT",
            """CREATE TABLE snapshots (
                event_id TEXT NOT NULL, kind TEXT NOT NULL, device_id TEXT NOT NULL,
                boot_id TEXT NOT NULL, stream TEXT NOT NULL, track_id {big},
                bytes {big} NOT NULL, sha256 TEXT NOT NULL, width INTEGER NOT NULL,
                height INTEGER NOT NULL, ts {real} NOT NULL, created {real} NOT NULL,
                path TEXT, jpeg {blob}, PRIMARY KEY (event_id, kind))""",
            "CREATE INDEX snapshots_track ON snapshots (device_id, boot_id, stream, track_id)",
            "CREATE INDEX snapshots_created ON snapshots (created)",
        ],
    ),
    (
        6,
        [
            # Snapshots that came before their event (``cloud_sync.hub.snapshots.pending``):
            # the whole wire message, so a hub that restarts (or crashes) after the broker's
            # acknowledgement still holds them, and checks them again when it loads them.
            """CREATE TABLE snapshots_pending (
                event_id TEXT NOT NULL, kind TEXT NOT NULL, device_id TEXT NOT NULL,
                payload {blob} NOT NULL, received_at {real} NOT NULL,
                PRIMARY KEY (event_id, kind))""",
        ],
    ),
]


EVENT_COLS = (
    "n, id, device_id, boot_id, seq, stream, kind, label, score, phase, started_at, ts, box,"
    " track_id, model_name, model_version, model_sha256, latency_ms, received_at,"
    " zones, zone, line, direction, snapshots"
)
"""The events table's columns, in order (``n`` first)."""


class Engine:
    """Connections, transactions and migrations; ``Store`` adds the queries."""

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
