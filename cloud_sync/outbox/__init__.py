"""The durable outbox (``store``), its seq state (``state``), recovery (``recover``,
``open``), wire-schema checks (``validate``) and a read-only view (``inspect``)."""

from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.store import (
    Outbox,
    OutboxStats,
    Row,
    Synchronous,
    WhenFull,
    batch_payload,
)

__all__ = ["Outbox", "OutboxError", "OutboxStats", "Row", "Synchronous", "WhenFull",
           "batch_payload"]  # fmt: skip
