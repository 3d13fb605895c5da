"""The v1 wire schema: event batches, status, telemetry, commands, and the topics.

Imports pydantic only: the hub validates with these models and never touches
onnxruntime or OpenCV. Every payload carries ``"v": 1``; a v2 payload is a new
set of models beside these, picked by ``v``, so both can coexist on one broker.

``python -m cloud_sync.schema --write cloud_sync/schemas`` regenerates the JSON Schema
files for dashboard builders (a test checks they are current). They live inside the
package so that an installed wheel ships them (``SCHEMAS_DIR``); ``schemas/`` at the top
of the checkout is a link to them, kept for the paths already in use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.wire import (
    COMMAND_PATTERN,
    DEVICE_ID_PATTERN,
    MAX_REGIONS,
    MAX_SNAPSHOT_BYTES,
    MAX_SNAPSHOT_HEADER,
    SNAPSHOT_MAGIC,
    Count,
    DeviceId,
    Finite,
    JsonObject,
    Label,
    NonNegative,
    SnapshotKind,
    StreamName,
    Unit,
    WireTime,
    is_command_name,
    is_device_id,
)
from edge.wire import (
    DEFAULT_PREFIX as DEFAULT_PREFIX,  # re-exported: defined in edge.wire
)
from edge.wire import (
    MAX_BATCH_EVENTS as MAX_BATCH_EVENTS,
)

SCHEMA_VERSION = 1

Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
Name = Label
TopicKind = Literal["status", "events", "telemetry", "cmd", "ack", "snapshots"]
EventPhase = Literal["start", "update", "end", "enter", "exit", "cross"]
PHASES: tuple[str, ...] = get_args(EventPhase)
"""A track's lifecycle (start, update, end), and what it did in a named zone or line."""


class _Wire(BaseModel):
    """Strict on the wire: ``"seq": "7"``, ``track_id: true`` and ``v: true`` are refused.
    Bounds come from ``edge.wire`` (finite floats, int64 integers, 2000-2100 timestamps)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Versioned(_Wire):
    v: Literal[1] = 1

    @field_validator("v", mode="before")
    @classmethod
    def _int_version(cls, value: object) -> object:
        if isinstance(value, bool):  # True == 1 passes Literal[1] even in strict mode
            raise ValueError("v must be the integer 1")
        return value


class ModelRefV1(_Wire):
    name: Name
    version: Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{6,64}$")]


class EventV1(_Wire):
    id: Uuid = Field(description="UUIDv7, unique forever; the hub deduplicates by it")
    device_id: DeviceId
    boot_id: Uuid = Field(description="one per daemon start")
    seq: Count = Field(description="per device, monotonic across restarts, no gaps")
    stream: StreamName
    kind: Literal["vision", "audio"]
    label: Name
    score: Unit
    phase: EventPhase = Field(
        description="a track's lifecycle (start, update, end), or what it did in a named "
        "region: enter / exit a zone (`zone`), cross a line (`line`, `direction`)"
    )
    started_at: WireTime
    ts: WireTime = Field(description="capture time, RFC 3339 UTC")
    box: Annotated[list[Unit], Field(min_length=4, max_length=4)] | None = Field(
        default=None, description="normalized x1, y1, x2, y2 (vision)"
    )
    track_id: Count | None = None
    model: ModelRefV1
    latency_ms: NonNegative = Field(description="capture to event")
    zones: Annotated[list[StreamName], Field(max_length=MAX_REGIONS)] | None = Field(
        default=None,
        description="the named zones the object is in (vision streams with zones; absent: "
        "the stream has none)",
    )
    zone: StreamName | None = Field(default=None, description="enter / exit: the zone")
    line: StreamName | None = Field(default=None, description="cross: the line")
    direction: Literal["in", "out"] | None = Field(
        default=None, description="cross: in (from the line's left to its right) or out"
    )
    snapshots: Annotated[list[SnapshotKind], Field(min_length=1, max_length=4)] | None = Field(
        default=None,
        description="the snapshots the device took for this event (start / start_crop on a "
        "start event, best / best_crop on an end event); they follow on the snapshots topic",
    )

    @model_validator(mode="after")
    def _region(self) -> EventV1:
        if (self.zone is not None) != (self.phase in ("enter", "exit")):
            raise ValueError("zone is given with phase enter / exit, and only then")
        cross = self.phase == "cross"
        if (self.line is not None) != cross or (self.direction is not None) != cross:
            raise ValueError("line and direction are given with phase cross, and only then")
        return self


class SnapshotHeaderV1(_Versioned):
    """The header of a binary snapshot message (``…/<device>/snapshots``): ``EWS1``, a
    big-endian uint16 header length, this header as JSON, then the JPEG (``bytes`` long).

    A header in the payload rather than MQTT v5 user properties: it works on MQTT 3.1.1
    brokers (the demo's fallback broker) and survives bridges that drop properties."""

    device_id: DeviceId
    event_id: Uuid = Field(description="the event this picture belongs to")
    stream: StreamName
    kind: SnapshotKind
    content_type: Literal["image/jpeg"] = "image/jpeg"
    ts: WireTime = Field(description="capture time of the frame")
    width: Annotated[int, Field(ge=1, le=8192, strict=True)]
    height: Annotated[int, Field(ge=1, le=8192, strict=True)]
    bytes: Annotated[int, Field(ge=4, le=MAX_SNAPSHOT_BYTES, strict=True)]
    box: Annotated[list[Unit], Field(min_length=4, max_length=4)] | None = Field(
        default=None, description="the object's box, normalized x1, y1, x2, y2 in this image"
    )


class SnapshotError(ValueError):
    """A snapshot message that is not one: the reason names the part that is wrong."""


def encode_snapshot(header: SnapshotHeaderV1, jpeg: bytes) -> bytes:
    """The wire bytes of one snapshot; refuses (``SnapshotError``) what the hub would."""
    if len(jpeg) != header.bytes:
        raise SnapshotError(f"header says {header.bytes} bytes, the JPEG has {len(jpeg)}")
    check_jpeg(jpeg)
    head = header.model_dump_json(exclude_none=True).encode()
    if len(head) > MAX_SNAPSHOT_HEADER:
        raise SnapshotError(f"header is {len(head)} bytes, over {MAX_SNAPSHOT_HEADER}")
    return SNAPSHOT_MAGIC + len(head).to_bytes(2, "big") + head + jpeg


def decode_snapshot(payload: bytes) -> tuple[SnapshotHeaderV1, bytes]:
    """``(header, jpeg)`` of a snapshot message; ``SnapshotError`` for anything else."""
    if len(payload) > len(SNAPSHOT_MAGIC) + 2 + MAX_SNAPSHOT_HEADER + MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"message is {len(payload)} bytes, over the snapshot limit")
    if not payload.startswith(SNAPSHOT_MAGIC) or len(payload) < 6:
        raise SnapshotError("not a snapshot message (no EWS1 magic)")
    n = int.from_bytes(payload[4:6], "big")
    if n > MAX_SNAPSHOT_HEADER or 6 + n > len(payload):
        raise SnapshotError(f"header length {n} is out of bounds")
    try:
        header = SnapshotHeaderV1.model_validate_json(payload[6 : 6 + n])
    except ValueError as exc:
        raise SnapshotError(f"bad header: {str(exc).splitlines()[0]}") from None
    jpeg = payload[6 + n :]
    if len(jpeg) != header.bytes:
        raise SnapshotError(f"header says {header.bytes} bytes, the message has {len(jpeg)}")
    check_jpeg(jpeg)
    return header, jpeg


def check_jpeg(data: bytes) -> None:
    """A cheap structural check without an image library: SOI and a marker, EOI at the end."""
    if not (data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00").endswith(b"\xff\xd9")):
        raise SnapshotError("not a JPEG (no SOI / EOI markers)")


class EventBatchV1(_Versioned):
    device_id: DeviceId
    boot_id: Uuid
    events: Annotated[list[EventV1], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]

    @model_validator(mode="after")
    def _same_device(self) -> EventBatchV1:
        for e in self.events:
            if e.device_id != self.device_id:
                raise ValueError(
                    f"event {e.id} has device_id {e.device_id!r}, the batch says {self.device_id!r}"
                )
        return self


class StatusV1(_Versioned):
    device_id: DeviceId
    state: Literal["online", "offline", "stopped"]
    boot_id: Uuid | None = None
    ts: WireTime | None = None
    version: str | None = Field(default=None, max_length=64, description="edgewise version")
    epoch: Count | None = Field(
        default=None,
        description="boot counter, +1 on every daemon start; kept outside the outbox, so it "
        "survives an outbox that was lost (Sparkplug's bdSeq)",
    )
    seq_start: Count | None = Field(default=None, description="the first seq this boot will assign")
    outbox_reset: bool = Field(
        default=False,
        description="this boot found its outbox lost or damaged: seqs below seq_start that the "
        "hub never received are lost at the device, not in transit",
    )


SeqRange = Annotated[list[Count], Field(min_length=2, max_length=2)]
"""An inclusive ``[first, last]`` range of sequence numbers."""


class HubAckV1(_Versioned):
    """Published by the hub on ``<prefix>/<device>/ack`` (QoS 1) once the events in
    ``ranges`` are stored (or quarantined: kept where an operator sees them, never
    dropped). The device deletes a row from its outbox only on this acknowledgement;
    a broker's PUBACK is one hop, not the end."""

    device_id: DeviceId
    ranges: Annotated[list[SeqRange], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]

    @model_validator(mode="after")
    def _ordered(self) -> HubAckV1:
        for first, last in self.ranges:
            if first > last:
                raise ValueError(f"range [{first}, {last}] is reversed")
        return self


class HubOnlineV1(_Versioned):
    """Published by each hub worker on ``<prefix>/_hub/online`` (QoS 1, not retained) once
    its subscriptions are in place (after the SUBACK).

    A broker that restarted may have PUBACK'd events while no hub subscription existed
    (mosquitto restores a persistent session but not its ``$share`` subscriptions), and
    those events reached nobody. A device that hears this sends again every row the
    broker took but the hub has not acknowledged, at once, instead of waiting out
    ``sync.hub_ack_timeout_s``; the hub drops the repeats by event id."""

    hub: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
    ts: WireTime


ShortText = Annotated[str, Field(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")]


class StreamStatsV1(_Wire):
    """One stream. ``kind`` says what the rates and counters count: video frames, or
    audio chunks (``chunk_ms`` long each)."""

    kind: Literal["video", "audio"] | None = None
    fps_in: NonNegative
    fps_processed: NonNegative
    dropped: Count
    gated: Count = 0
    reconnects: Count = 0
    frames_in: Count = 0
    processed: Count = 0
    skipped: Count = Field(default=0, description="unusable frames/chunks, and crashed ones")
    restarts: Count = Field(default=0, description="pipeline threads restarted after a crash")
    queue_depth: dict[Label, Count] = Field(default_factory=dict)
    error: ShortText | None = Field(default=None, description="why the stream ended badly")
    zones: Annotated[dict[StreamName, dict[Label, Count]], Field(max_length=MAX_REGIONS)] = Field(
        default_factory=dict,
        description="objects in each named zone now, by label (every zone, empty ones too)",
    )
    lines: Annotated[
        dict[StreamName, dict[Literal["in", "out"], Count]], Field(max_length=MAX_REGIONS)
    ] = Field(default_factory=dict, description="crossings of each named line since boot")


class DetectorStatsV1(_Wire):
    inference_ms: NonNegative = Field(description="mean over the streams that run it")
    calls: Count = 0
    model: ModelRefV1 | None = None
    inference_ms_by_stream: dict[StreamName, NonNegative] = Field(default_factory=dict)
    accelerator: JsonObject | None = Field(
        default=None, description="what the runtime really runs on (provider or delegate)"
    )
    source: Literal["ota", "config"] | None = Field(
        default=None,
        description="where the running model came from: a signed over-the-air update (the "
        "device's OTA record) or the device config; absent: not reported",
    )
    counter: Count | None = Field(
        default=None, description="the last signed update counter the device accepted (0: none)"
    )


class OutboxStatsV1(_Wire):
    depth: Count
    oldest_age_s: NonNegative
    dropped: Count = Field(description="dropped (drop_oldest) or refused (reject_new) when full")
    bytes: Count = 0
    unacked: Count = Field(default=0, description="PUBACK'd by the broker, not yet by the hub")
    dead_letters: Count = Field(
        default=0, description="refused by the wire schema at the device this boot; kept there"
    )
    append_failures: Count = Field(default=0, description="commits that failed (disk full, I/O)")
    events_lost: Count = Field(default=0, description="events those failed commits held")
    next_seq: Count | None = Field(default=None, description="the next seq to be assigned")


class SnapshotStatsV1(_Wire):
    """The device's snapshot store (``cloud_sync.outbox.snapshots``); counts are this boot's."""

    queued: Count = Field(description="snapshots committed and not yet PUBACK'd")
    bytes: Count = Field(default=0, description="bytes those hold (bounded by snapshot_max_bytes)")
    sent: Count = Field(default=0, description="PUBACK'd by the broker and deleted")
    dropped: Count = Field(default=0, description="pushed out by newer snapshots (size bound)")
    lost: Count = Field(default=0, description="failed commits (disk full, I/O error)")
    refused: Count = Field(
        default=0,
        description="refused at the device: the hub would refuse them (too big, "
        "not a JPEG, a bad event id)",
    )


class SinkStatsV1(_Wire):
    failures: Count = 0
    events_lost: Count = 0


class TelemetryV1(_Versioned):
    device_id: DeviceId
    boot_id: Uuid
    ts: WireTime
    uptime_s: NonNegative
    streams: dict[StreamName, StreamStatsV1] = Field(default_factory=dict)
    detectors: dict[Name, DetectorStatsV1] = Field(default_factory=dict)
    outbox: OutboxStatsV1 | None = Field(
        default=None, description="absent when the outbox's figures could not be read"
    )
    snapshots: SnapshotStatsV1 | None = Field(
        default=None, description="absent on devices without snapshots, or when unreadable"
    )
    sinks: dict[Name, SinkStatsV1] = Field(default_factory=dict)
    reconnects: Count = Field(description="MQTT reconnects since boot")
    cpu_percent: NonNegative | None = None
    rss_mb: NonNegative | None = None
    temperature_c: Finite | None = None
    ota_error: ShortText | None = Field(
        default=None,
        description="the device's OTA record cannot be read: its config's models run and "
        "model updates are refused until the owner repairs it",
    )
    build_errors: Count = Field(
        default=0, description="telemetry sections that could not be built, since boot"
    )
    errors: Annotated[list[ShortText], Field(max_length=16)] = Field(
        default_factory=list, description="what was left out of this payload, and why"
    )


class CommandV1(_Versioned):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        description="request id, echoed"
    )
    args: JsonObject = Field(default_factory=dict)


class CommandReplyV1(_Versioned):
    id: Annotated[str, Field(max_length=64)]
    command: Name
    ok: bool
    message: Annotated[str, Field(max_length=4096)] = ""
    result: JsonObject | None = None


# --- topics -------------------------------------------------------------------------------


def topic(prefix: str, device_id: str, kind: TopicKind, command: str | None = None) -> str:
    """``<prefix>/<device>/<kind>``; commands: ``<prefix>/<device>/cmd/<name>``.

    Raises ``ValueError`` for a device id or command name that is not one topic level
    (validated at the producer: a broker disconnects a client that publishes a bad topic)."""
    if not is_device_id(device_id):
        raise ValueError(f"device id {device_id!r} must match {DEVICE_ID_PATTERN}")
    base = f"{prefix}/{device_id}/{kind}"
    if kind == "cmd":
        if not command:
            raise ValueError("a cmd topic needs a command name")
        if not is_command_name(command):
            raise ValueError(f"command name {command!r} must match {COMMAND_PATTERN}")
        return f"{base}/{command}"
    return base


def hub_online_topic(prefix: str) -> str:
    """``<prefix>/_hub/online``: ``_hub`` cannot be a device id (ids start with a letter or
    digit), and the two levels match none of the hub's own ``+/<kind>`` filters."""
    return f"{prefix}/_hub/online"


def reply_topic(prefix: str, device_id: str, command: str) -> str:
    return topic(prefix, device_id, "cmd", command) + "/reply"


def parse_topic(prefix: str, t: str) -> tuple[str, str, str | None] | None:
    """``(device_id, kind, command)`` for a topic under ``prefix``; None if it is not one."""
    if not t.startswith(prefix + "/"):
        return None
    parts = t[len(prefix) + 1 :].split("/")
    if len(parts) == 2 and parts[1] in ("status", "events", "telemetry", "ack", "snapshots"):
        return parts[0], parts[1], None
    if len(parts) == 3 and parts[1] == "cmd":
        return parts[0], "cmd", parts[2]
    if len(parts) == 4 and parts[1] == "cmd" and parts[3] == "reply":
        return parts[0], "reply", parts[2]
    return None


SCHEMAS: dict[str, type[BaseModel]] = {
    "event-batch.v1": EventBatchV1,
    "status.v1": StatusV1,
    "telemetry.v1": TelemetryV1,
    "command.v1": CommandV1,
    "command-reply.v1": CommandReplyV1,
    "hub-ack.v1": HubAckV1,
    "hub-online.v1": HubOnlineV1,
    "snapshot-header.v1": SnapshotHeaderV1,
}


SCHEMAS_DIR = Path(__file__).with_name("schemas")  # the committed files, shipped as package data


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in SCHEMAS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write the v1 JSON Schema files")
    p.add_argument("--write", type=Path, required=True, metavar="DIR")
    args = p.parse_args(argv)
    args.write.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (args.write / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
