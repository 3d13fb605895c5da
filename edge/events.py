"""Events: what the pipeline tells the world, with a lifecycle (start / update / end).

An ``Event`` is the domain type. The wire format (``cloud_sync.schema.EventV1``) adds
the device id, boot id and per-device ``seq``, which the outbox assigns when the
event enters it. ``Event.encode()`` is the one serialisation: the JSON Lines sinks
write it as it is, the outbox splices ``"seq"`` in front of it, so a line in a
``.jsonl`` file and a row in the outbox differ by ``seq`` alone.

Boxes: detectors report pixels of the image they were given (``Detection.box``, and
``edge detect`` prints those); events carry normalized ``x1, y1, x2, y2`` in [0, 1]
(the wire's convention). The conversion happens in one place,
``edge.pipeline.vision.normalize_box``. Sinks receive events through ``EventSink``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from edge.compat import UTC
from edge.supervise import ComponentHealth
from edge.wire import SnapshotKind

Kind = Literal["vision", "audio"]
Phase = Literal["start", "update", "end", "enter", "exit", "cross"]
"""A track's lifecycle (start / update / end), and what it did in a named region:
``enter`` / ``exit`` a zone (``Event.zone``), ``cross`` a line (``Event.line``,
``Event.direction``). See ``edge.zones``."""

_uuid_lock = threading.Lock()
_uuid_last_ms = 0
_uuid_counter = 0


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix ms, then a 12-bit counter and 62 random bits.

    Monotonic within a process: ids created in the same millisecond sort in
    creation order (the counter), and a clock step back never repeats an id.
    """
    global _uuid_last_ms, _uuid_counter
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _uuid_last_ms:
            _uuid_counter += 1
            if _uuid_counter > 0xFFF:
                _uuid_last_ms += 1
                _uuid_counter = 0
            ms = _uuid_last_ms
        else:
            _uuid_last_ms = ms
            _uuid_counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        counter = _uuid_counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(epoch_s: float) -> str:
    """UTC, millisecond precision, ``Z`` suffix: ``2026-11-27T16:36:31.123Z``."""
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: str
    sha256: str  # a 12-hex-digit prefix is enough to tell builds apart

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256[:12]}


@dataclass(slots=True)
class Event:
    """One lifecycle step of one tracked thing (a face track, a speech segment)."""

    stream: str
    kind: Kind
    label: str
    score: float
    phase: Phase
    started_at: float  # epoch seconds when the thing was first confirmed
    ts: float  # epoch seconds of the capture this step is about
    model: ModelRef
    track_id: int | None = None
    box: tuple[float, float, float, float] | None = None  # normalized x1, y1, x2, y2 (vision)
    latency_ms: float = 0.0  # capture to event
    zones: tuple[str, ...] | None = None  # the zones the object is in (streams with zones)
    zone: str | None = None  # enter / exit: which zone
    line: str | None = None  # cross: which line
    direction: Literal["in", "out"] | None = None  # cross: which way (edge.zones)
    snapshots: tuple[SnapshotKind, ...] | None = None  # JPEGs sent for this event (edge.snapshots)
    id: str = field(default_factory=uuid7)

    def __post_init__(self) -> None:
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            if not (0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0):
                raise ValueError(f"box must be normalized x1<=x2, y1<=y2 in [0, 1], got {self.box}")
        if (self.zone is not None) != (self.phase in ("enter", "exit")):
            raise ValueError(f"a zone is given with phase enter / exit only, got {self.phase}")
        if (self.line is not None or self.direction is not None) != (self.phase == "cross"):
            raise ValueError("line and direction go with phase cross, and it needs both")
        if self.phase == "cross" and (self.line is None or self.direction is None):
            raise ValueError("a cross event needs its line and direction")

    def to_json(self) -> dict[str, Any]:
        """The wire fields this side knows (no device_id / boot_id / seq: the outbox adds them)."""
        out: dict[str, Any] = {
            "id": self.id,
            "stream": self.stream,
            "kind": self.kind,
            "label": self.label,
            "score": round(float(self.score), 4),
            "phase": self.phase,
            "started_at": rfc3339(self.started_at),
            "ts": rfc3339(self.ts),
            "model": self.model.to_json(),
            "latency_ms": round(float(self.latency_ms), 2),
        }
        if self.track_id is not None:
            out["track_id"] = self.track_id
        if self.box is not None:
            out["box"] = [round(float(v), 5) for v in self.box]
        if self.zones is not None:
            out["zones"] = list(self.zones)
        if self.zone is not None:
            out["zone"] = self.zone
        if self.line is not None:
            out["line"] = self.line
        if self.direction is not None:
            out["direction"] = self.direction
        if self.snapshots:
            out["snapshots"] = list(self.snapshots)
        return out

    def wire(self, device_id: str, boot_id: str) -> dict[str, Any]:
        """``EventV1`` without ``seq`` (the outbox assigns it)."""
        return {"device_id": device_id, "boot_id": boot_id, **self.to_json()}

    def encode(self, device_id: str, boot_id: str) -> str:
        """The event as compact JSON: what every sink writes (the outbox adds ``seq``)."""
        return json.dumps(self.wire(device_id, boot_id), separators=(",", ":"), allow_nan=False)


class EventSink(Protocol):
    """Where events go: a JSON Lines file, stdout, the MQTT outbox. Context managers."""

    def emit(self, event: Event) -> None:
        """Accept one event. Durable sinks have committed it when this returns."""
        ...

    def emit_many(self, events: Sequence[Event]) -> int | None:
        """Accept several events at once (one transaction for durable sinks)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def health(self) -> list[ComponentHealth]:
        """Whether the sink can do its job: a sink whose writes fail (full disk, read-only,
        corrupt file) says so here and counts it; a sink that owns threads reports each."""
        ...
