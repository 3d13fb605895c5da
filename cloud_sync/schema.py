"""The v1 wire schema: event batches, status, telemetry, commands, and the topics.

Imports pydantic only: the hub validates with these models and never touches
onnxruntime or OpenCV. Every payload carries ``"v": 1``; a v2 payload is a new
set of models beside these, picked by ``v``, so both can coexist on one broker.

``python -m cloud_sync.schema --write schemas/`` regenerates the JSON Schema
files in the repo for dashboard builders (a test checks they are current).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
DEFAULT_PREFIX = "edgewise/v1"
MAX_BATCH_EVENTS = 1000

DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""A device id is one MQTT topic level: no '/', '+', '#', at most 64 characters."""

Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
Name = Annotated[str, Field(min_length=1, max_length=128)]
TopicKind = Literal["status", "events", "telemetry", "cmd"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRefV1(_Wire):
    name: Name
    version: Annotated[str, Field(max_length=64)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{6,64}$")]


class EventV1(_Wire):
    id: Uuid = Field(description="UUIDv7, unique forever; the hub deduplicates by it")
    device_id: DeviceId
    boot_id: Uuid = Field(description="one per daemon start")
    seq: int = Field(ge=0, description="per device, monotonic across restarts, no gaps")
    stream: Name
    kind: Literal["vision", "audio"]
    label: Name
    score: float = Field(ge=0.0, le=1.0)
    phase: Literal["start", "update", "end"]
    started_at: AwareDatetime
    ts: AwareDatetime = Field(description="capture time, RFC 3339 UTC")
    box: (
        Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=4, max_length=4)]
        | None
    ) = Field(default=None, description="normalized x1, y1, x2, y2 (vision)")
    track_id: int | None = Field(default=None, ge=0)
    model: ModelRefV1
    latency_ms: float = Field(ge=0.0, description="capture to event")


class EventBatchV1(_Wire):
    v: Literal[1] = 1
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


class StatusV1(_Wire):
    v: Literal[1] = 1
    device_id: DeviceId
    state: Literal["online", "offline", "stopped"]
    boot_id: Uuid | None = None
    ts: AwareDatetime | None = None
    version: str | None = Field(default=None, max_length=64, description="edgewise version")


class StreamStatsV1(_Wire):
    fps_in: float = Field(ge=0.0)
    fps_processed: float = Field(ge=0.0)
    dropped: int = Field(ge=0)
    gated: int = Field(default=0, ge=0)
    reconnects: int = Field(default=0, ge=0)


class DetectorStatsV1(_Wire):
    inference_ms: float = Field(ge=0.0)
    calls: int = Field(default=0, ge=0)


class OutboxStatsV1(_Wire):
    depth: int = Field(ge=0)
    oldest_age_s: float = Field(ge=0.0)
    dropped: int = Field(ge=0)
    bytes: int = Field(default=0, ge=0)


class TelemetryV1(_Wire):
    v: Literal[1] = 1
    device_id: DeviceId
    boot_id: Uuid
    ts: AwareDatetime
    uptime_s: float = Field(ge=0.0)
    streams: dict[Name, StreamStatsV1] = Field(default_factory=dict)
    detectors: dict[Name, DetectorStatsV1] = Field(default_factory=dict)
    outbox: OutboxStatsV1
    reconnects: int = Field(ge=0, description="MQTT reconnects since boot")
    cpu_percent: float | None = Field(default=None, ge=0.0)
    rss_mb: float | None = Field(default=None, ge=0.0)
    temperature_c: float | None = None


class CommandV1(_Wire):
    v: Literal[1] = 1
    id: Annotated[str, Field(min_length=1, max_length=64)] = Field(description="request id, echoed")
    args: dict[str, Any] = Field(default_factory=dict)


class CommandReplyV1(_Wire):
    v: Literal[1] = 1
    id: str
    command: Name
    ok: bool
    message: str = ""
    result: dict[str, Any] | None = None


# --- topics -------------------------------------------------------------------------------


def topic(prefix: str, device_id: str, kind: TopicKind, command: str | None = None) -> str:
    """``<prefix>/<device>/<kind>``; commands: ``<prefix>/<device>/cmd/<name>``."""
    base = f"{prefix}/{device_id}/{kind}"
    if kind == "cmd":
        if not command:
            raise ValueError("a cmd topic needs a command name")
        return f"{base}/{command}"
    return base


def reply_topic(prefix: str, device_id: str, command: str) -> str:
    return f"{prefix}/{device_id}/cmd/{command}/reply"


def parse_topic(prefix: str, t: str) -> tuple[str, str, str | None] | None:
    """``(device_id, kind, command)`` for a topic under ``prefix``; None if it is not one."""
    if not t.startswith(prefix + "/"):
        return None
    parts = t[len(prefix) + 1 :].split("/")
    if len(parts) == 2 and parts[1] in ("status", "events", "telemetry"):
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
}


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
