"""Fixtures the integration and fault tests share, offered to them by their conftest.py:
``broker`` (a private mosquitto), ``db_url`` and ``store`` (the hub's database, once on
SQLite and once on the real PostgreSQL, which skips where none is reachable). A test
module that needs another kind (a module-scoped broker, one with an ACL) defines its own
fixture of the same name, which wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hub.db import Store, open_store
from tests.integration.hub_support import pg_database
from tests.support.mosquitto import Broker, start_broker


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hub.db"
    else:
        with pg_database() as url:
            yield url


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    """An open, migrated store on ``db_url`` (both engines)."""
    s = open_store(db_url)
    s.migrate()
    yield s
    s.close()
