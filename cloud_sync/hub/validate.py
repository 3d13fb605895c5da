"""Turns one MQTT message into a typed v1 message or a counted rejection.

Pure: no I/O. Every payload is checked for size, JSON, schema version, the v1
model, and that the device id in the payload is the one in the topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import ValidationError

from cloud_sync.schema import (
    SCHEMA_VERSION,
    CommandReplyV1,
    EventBatchV1,
    StatusV1,
    TelemetryV1,
    parse_topic,
)

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
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
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
