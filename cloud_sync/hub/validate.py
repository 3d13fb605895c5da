"""Turns one MQTT message into a typed v1 message or a counted rejection.

Pure: no I/O. Every payload is checked for size, JSON (``edge.wire.loads``: bounded
depth, no NaN/Infinity, 64-bit integers), schema version, the v1 model, and that
the device id in the payload is the one in the topic. ``salvage_batch`` splits a
batch that failed validation into its good events and its bad ones, so one bad
event does not cost the rest of its batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, get_args

from pydantic import ValidationError

from cloud_sync.schema import (
    MAX_BATCH_EVENTS,
    SCHEMA_VERSION,
    CommandReplyV1,
    EventBatchV1,
    EventV1,
    StatusV1,
    TelemetryV1,
    parse_topic,
)
from edge.wire import INT64_MAX, is_device_id, loads

DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""A full batch (1000 events) is ~400 kB of JSON; anything past 1 MiB is refused."""

RejectReason = Literal[
    "too_large",
    "bad_topic",
    "not_json",
    "bad_version",
    "bad_schema",
    "device_mismatch",
    "rate_limited",
]
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    topic: str
    detail: str


@dataclass(frozen=True, slots=True)
class Reply:
    device_id: str
    command: str
    reply: CommandReplyV1


Accepted = EventBatchV1 | StatusV1 | TelemetryV1 | Reply


def decode(
    prefix: str, topic: str, payload: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Accepted | Rejected:
    """Validate one message; never raises on hostile input."""
    if len(payload) > max_payload:
        return Rejected("too_large", topic, f"{len(payload)} bytes > {max_payload}")
    parsed = parse_topic(prefix, topic)
    if parsed is None or parsed[1] in ("cmd", "ack"):
        return Rejected("bad_topic", topic, "not a status, events, telemetry or reply topic")
    device_id, kind, command = parsed
    try:
        doc = loads(payload, numbers=False)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        return Rejected("not_json", topic, str(e)[:200])
    if not isinstance(doc, dict):
        return Rejected(
            "bad_schema", topic, f"payload is a JSON {type(doc).__name__}, not an object"
        )
    if doc.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
        return Rejected(
            "bad_version", topic, f"v={doc.get('v')!r}; this hub reads v{SCHEMA_VERSION}"
        )
    try:
        if kind == "events":
            msg: Accepted = EventBatchV1.model_validate(doc)
        elif kind == "status":
            msg = StatusV1.model_validate(doc)
        elif kind == "telemetry":
            msg = TelemetryV1.model_validate(doc)
        else:
            assert command is not None
            return Reply(device_id, command, CommandReplyV1.model_validate(doc))
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return Rejected("bad_schema", topic, f"{loc}: {first['msg']}"[:200])
    if msg.device_id != device_id:
        return Rejected(
            "device_mismatch", topic, f"payload device_id {msg.device_id!r} != topic {device_id!r}"
        )
    return msg


@dataclass(frozen=True, slots=True)
class BadEvent:
    """One event of a batch that failed validation: its JSON, why, and its seq if usable."""

    raw: bytes
    detail: str
    seq: int | None


@dataclass(frozen=True, slots=True)
class Salvaged:
    good: EventBatchV1 | None
    bad: list[BadEvent] = field(default_factory=list)


def salvage_batch(prefix: str, topic: str, payload: bytes) -> Salvaged | None:
    """For an events message that failed as a whole: validate its events one by one.

    ``None`` when the batch's own fields (``v``, ``device_id``, ``boot_id``, the list)
    are wrong, so there is nothing to split: the whole message is quarantined."""
    parsed = parse_topic(prefix, topic)
    if parsed is None or parsed[1] != "events":
        return None
    device_id = parsed[0]
    try:
        doc = loads(payload, numbers=False)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or set(doc) - {"v", "device_id", "boot_id", "events"}:
        return None
    v = doc.get("v", SCHEMA_VERSION)
    events = doc.get("events")
    if (
        isinstance(v, bool)
        or v != SCHEMA_VERSION
        or doc.get("device_id") != device_id
        or not is_device_id(device_id)
        or not isinstance(events, list)
        or not 1 <= len(events) <= MAX_BATCH_EVENTS
    ):
        return None
    good: list[EventV1] = []
    bad: list[BadEvent] = []
    for i, ev in enumerate(events):
        try:
            e = EventV1.model_validate(ev)
            if e.device_id != device_id:
                raise ValueError(f"device_id {e.device_id!r} != topic {device_id!r}")
            good.append(e)
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors()[0]
                detail = f"events.{i}.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            else:
                detail = f"events.{i}: {exc}"
            seq = ev.get("seq") if isinstance(ev, dict) else None
            ok_seq = isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= INT64_MAX
            bad.append(BadEvent(json.dumps(ev).encode(), detail[:200], seq if ok_seq else None))
    batch = None
    if good:
        batch = EventBatchV1(device_id=device_id, boot_id=good[0].boot_id, events=good)
    return Salvaged(batch, bad)
