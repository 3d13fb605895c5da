"""PostgreSQL engine (psycopg 3): the same schema; migrations under an advisory lock."""

from __future__ import annotations

from typing import Any

from cloud_sync.hub.db.base import Store
from cloud_sync.hub.db.engine import Cursor
from cloud_sync.hub.errors import StoreError

_MIGRATION_LOCK = 0x6564676577697365  # "edgewise"


class PostgresStore(Store):
    pk = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    blob = "BYTEA"
    greatest = "GREATEST"
    least = "LEAST"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        try:
            import psycopg  # noqa: F401 -- checked here so the error names the extra
        except ImportError:
            raise StoreError(
                f"--db {url!r}: psycopg is not installed; pip install 'edgewise[hub]'"
            ) from None

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=5)
        except psycopg.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(f"--db {self.url!r}: cannot connect ({msg})") from None

    def is_transient(self, exc: BaseException) -> bool:
        # connection lost, server restarting, admin shutdown: retry; DataError (a NUL in
        # text, a value out of range), IntegrityError ...: this data, quarantine it
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | StoreError)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _bucket(self, expr: str) -> str:
        return f"FLOOR({expr.replace('?', '%s')})"

    def _lock_migrations(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK - (1 << 63),))
