"""The durable outbox (``store``, ``delivery``), its seq state (``state``), recovery
(``open``, ``recover``), wire-schema checks (``validate``) and a read-only view (``inspect``)."""

from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.row import Row
from cloud_sync.outbox.store import Outbox, OutboxStats, Synchronous, WhenFull, batch_payload

__all__ = ["Outbox", "OutboxError", "OutboxStats", "Row", "Synchronous", "WhenFull",
           "batch_payload"]  # fmt: skip
