"""One stored event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    boot_id: str
    created: float  # epoch seconds when the event entered the outbox
    payload: str  # one EventV1 as JSON
