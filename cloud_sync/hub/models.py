"""The shapes the hub's HTTP API answers with, as pydantic models: one place for them.

Handlers build their bodies through these models (``reply``), and ``openapi.py`` derives
the OpenAPI document from the same classes, so the document cannot drift from what is
served. Values come from stored rows that may predate the strict v1 schemas (see
``db.render``), so fields are typed by kind (string, number, list) rather than by the
wire schema's tighter patterns: a row that is served must also conform.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse


class Out(BaseModel):
    """A response body: unknown keys are a bug (a field served but not documented)."""

    model_config = ConfigDict(extra="forbid")


JSONDoc = Any
"""A stored JSON document (box, telemetry, command args, replies): any JSON value."""
Time = str | None
"""RFC 3339 UTC with milliseconds (``2026-03-01T22:00:00.000Z``), or null."""


class ErrorOut(Out):
    error: str = Field(description="what was wrong, naming the parameter or body field")


class ModelOut(Out):
    name: str | None
    version: str | None
    sha256: str | None


class EventOut(Out):
    n: int = Field(description="the hub's insertion number: the SSE id and the page cursor")
    id: str
    device_id: str
    boot_id: str
    seq: int
    stream: str | None
    kind: str | None = Field(description="vision or audio")
    label: str | None
    score: float | None
    phase: str | None
    started_at: Time
    ts: Time
    box: JSONDoc = Field(description="normalized x1, y1, x2, y2 (vision), or null")
    track_id: int | None
    model: ModelOut
    latency_ms: float | None
    received_at: Time
    zones: JSONDoc = Field(description="the zones the object is in, or null")
    zone: str | None
    line: str | None
    direction: str | None
    snapshots: JSONDoc = Field(description="the snapshot kinds the device took, or null")
    snapshots_stored: list[str] | None = Field(
        default=None, description="the snapshot kinds the hub holds for this event"
    )


class EventsPage(Out):
    events: list[EventOut]
    next_cursor: int | None = Field(description="pass as ?cursor= for the next page; null: last")


class TrackOut(Out):
    events: list[EventOut]
    truncated: bool = Field(description="the track has more events than ?limit=")


class BootOut(Out):
    boot_id: str
    first_seq: int | None
    last_seq: int | None
    first_seen: Time
    last_seen: Time


class DeviceOut(Out):
    device_id: str
    first_seen: Time
    last_seen: Time
    state: str | None = Field(description="online, offline, stopped or unknown")
    state_at: Time
    boot_id: str | None
    version: str | None
    telemetry: JSONDoc = Field(description="the last telemetry message as stored, or null")
    last_event_at: Time
    events: int = Field(description="events stored for the device")


class DeviceDetail(DeviceOut):
    boots: list[BootOut]


class DevicesOut(Out):
    devices: list[DeviceOut]


class StreamRate(Out):
    kind: str | None
    fps: float | None


class DetectorRate(Out):
    inference_ms: float | None
    calls: JSONDoc


class TelemetryRow(Out):
    ts: Time
    fps: float | None = Field(description="sum over every stream (frames and audio chunks)")
    inference_ms: float | None
    cpu_percent: float | None
    rss_mb: float | None
    outbox_depth: float | None
    dropped: float | None
    boot_id: str | None
    streams: dict[str, StreamRate]
    detectors: dict[str, DetectorRate]


class TelemetryOut(Out):
    device_id: str
    telemetry: list[TelemetryRow]


class GapOut(Out):
    device_id: str
    from_seq: int
    to_seq: int
    missing: int
    cause: str = Field(description="in_transit, or outbox_reset (lost at the device)")
    boot_id: str | None
    after_ts: Time
    before_ts: Time


class GapsOut(Out):
    gaps: list[GapOut]


class QuarantinedOut(Out):
    n: int
    reason: str
    detail: str | None
    topic: str | None
    device_id: str | None
    payload: str = Field(description="the first 64 KiB, UTF-8 with replacement characters")
    payload_bytes: int
    truncated: bool
    first_at: Time
    last_at: Time
    count: int


class QuarantineOut(Out):
    total: int = Field(description="distinct quarantined payloads")
    quarantine: list[QuarantinedOut]
    next_cursor: int | None


class LabelCount(Out):
    label: str | None
    t: int = Field(description="bucket start, epoch seconds")
    count: int


class LabelStatsOut(Out):
    bucket_s: int
    counts: list[LabelCount]


class CommandOut(Out):
    id: str
    name: str
    args: JSONDoc
    sent_at: Time
    replied_at: Time
    ok: bool | None = Field(description="the device's reply: null until it arrives")
    reply: JSONDoc


class CommandsOut(Out):
    commands: list[CommandOut]


class CommandSent(Out):
    id: str
    topic: str


class CommandIn(BaseModel):
    """``POST /api/devices/{device_id}/commands``'s body (checked by the handler)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    args: dict[str, Any] = Field(default_factory=dict)


class LoginIn(BaseModel):
    token: str = Field(min_length=1)


class LoginOut(Out):
    ok: bool
    expires_in_s: int


class LogoutOut(Out):
    ok: bool


class SessionOut(Out):
    token_required: bool


class ComponentOut(Out):
    ok: bool
    restarts: int
    reason: str | None = None
    fatal: bool | None = None
    dependency: bool | None = None


class SnapshotCounts(Out):
    stored: int
    duplicate: int
    rejected: dict[str, int]
    deleted: dict[str, int]
    damaged: int
    pending: int


class HealthOut(Out):
    ok: bool
    reasons: list[str] = Field(description="'component: reason' for each one not ok")
    components: dict[str, ComponentOut]
    db: bool
    mqtt_connected: bool
    queue_depth: int
    snapshots: SnapshotCounts


def reply(model: type[Out], body: dict[str, Any], status: int = 200) -> JSONResponse:
    """The body checked against its model, then served as built (keys the handler left
    out stay out). A mismatch raises: a 500 here is a bug the schema test finds first."""
    model.model_validate(body)
    return JSONResponse(body, status_code=status)
