"""Event snapshots: JPEGs of the frame at a track's start and of its best-scoring frame
by its end, each with a crop around the box (``edge.wire.SnapshotKind``).

A ``Snapshot`` is the domain type the pipeline hands to sinks; sinks that deliver
pictures implement ``SnapshotSink`` (the MQTT sink commits them to its snapshot store,
then publishes them on ``<prefix>/<device>/snapshots`` with the binary header of
``cloud_sync.schema.SnapshotHeaderV1``). An event names the snapshots sent for it in
``Event.snapshots``; the start snapshots carry the ``start`` event's id, the best ones
the ``end`` event's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge.wire import SnapshotKind

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Snapshot:
    event_id: str  # the id of the event this picture belongs to
    stream: str
    kind: SnapshotKind
    ts: float  # epoch seconds of the frame's capture
    jpeg: bytes
    width: int  # of the JPEG
    height: int
    box: Box | None = None  # the object's box, normalized to this JPEG (None: unknown)


@runtime_checkable
class SnapshotSink(Protocol):
    """A sink that takes pictures. ``emit_snapshot`` returns once the snapshot is stored
    (durable sinks) or dropped (counted); it never raises for a full store."""

    def emit_snapshot(self, snapshot: Snapshot) -> None: ...
