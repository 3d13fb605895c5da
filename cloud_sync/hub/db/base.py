"""The store every engine shares: one schema and one set of queries (SQLite, PostgreSQL).

Events are keyed by their
UUIDv7 ``id`` and inserted with ``ON CONFLICT DO NOTHING``, so a redelivered
batch, or one seen by two workers, is stored once. ``n`` is the insertion
order; the feed and cursor pagination use it. Gaps are computed from the stored
sequence numbers at query time, so late or out-of-order batches (two workers
splitting one device's traffic) close the gap they fill without bookkeeping.
"""

from __future__ import annotations

from cloud_sync.hub.db.meta import Meta
from cloud_sync.hub.db.quarantine import Quarantine
from cloud_sync.hub.db.reads import Reads
from cloud_sync.hub.db.writes import Writes


class Store(Writes, Reads, Quarantine, Meta):
    """The queries; subclasses give the connection, the dialect and the key type.

    The schema, connections and transactions are ``db.engine``'s; the writes, the reads,
    the quarantine and the hub's own values (``meta``) each have their module."""
