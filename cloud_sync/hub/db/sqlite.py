"""SQLite engine: WAL, one connection per thread, a busy timeout for the API readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cloud_sync.hub.db.base import Store
from cloud_sync.hub.db.engine import Cursor
from cloud_sync.hub.errors import StoreError


class SqliteStore(Store):
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.path = url[len("sqlite:///") :]
        if not self.path:
            raise StoreError(f"--db {url!r}: no file; use sqlite:///hub.db")
        if self.path != ":memory:" and not Path(self.path).parent.exists():
            raise StoreError(f"--db {url!r}: folder {Path(self.path).parent} does not exist")

    def _connect(self) -> Any:
        try:
            conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise StoreError(f"--db {self.url!r}: cannot open ({e})") from None
        return conn

    def is_transient(self, exc: BaseException) -> bool:
        # locked, busy, disk I/O error, disk full, read-only file: the database, not the data
        return isinstance(exc, sqlite3.OperationalError | StoreError)

    def _lock_migrations(self, cur: Cursor) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _inserted(self, cur: Cursor, attempted: int) -> int:
        return max(cur.rowcount, 0)
