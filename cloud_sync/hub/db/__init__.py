"""The hub's stores: ``open_store(url)`` picks the engine by the URL's scheme.

``ENGINES`` maps each scheme to the module and class that serve it; an engine's
module is imported only when a URL asks for it (psycopg is an optional extra).
"""

from __future__ import annotations

import importlib

from cloud_sync.hub.db.base import Store
from cloud_sync.hub.db.reads import MAX_PAGE, MAX_TRACK, EventQuery, parse_time
from cloud_sync.hub.db.render import iso
from cloud_sync.hub.db.writes import WriteResult
from cloud_sync.hub.errors import StoreError

__all__ = [
    "ENGINES",
    "MAX_PAGE",
    "MAX_TRACK",
    "EventQuery",
    "Store",
    "WriteResult",
    "iso",
    "open_store",
    "parse_time",
]

ENGINES: dict[str, tuple[str, str]] = {
    "sqlite": ("cloud_sync.hub.db.sqlite", "SqliteStore"),
    "postgresql": ("cloud_sync.hub.db.postgres", "PostgresStore"),
    "postgres": ("cloud_sync.hub.db.postgres", "PostgresStore"),
}
"""URL scheme → (module, class). A new engine is one module and one line here."""


def open_store(url: str) -> Store:
    """``sqlite:///path.db`` (or ``sqlite:///:memory:``) or ``postgresql://…``."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    engine = ENGINES.get(scheme)
    if engine is None or (scheme == "sqlite" and not url.startswith("sqlite:///")):
        raise StoreError(
            f"--db {url!r}: unsupported URL; use sqlite:///hub.db or postgresql://user@host/db"
        )
    module, cls = engine
    store: Store = getattr(importlib.import_module(module), cls)(url)
    return store
