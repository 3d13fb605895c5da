"""Hostile and valid payloads through the hub's validator (no broker, no database)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from cloud_sync.hub.validate import Rejected, Reply, decode
from cloud_sync.schema import EventBatchV1, StatusV1, TelemetryV1
from edge.compat import UTC

P = "edgewise/v1"
BOOT = str(uuid.uuid4())
NOW = datetime.now(UTC).isoformat()


def event(device: str = "cam-1", seq: int = 0) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()), "device_id": device, "boot_id": BOOT, "seq": seq,
        "stream": "cam0", "kind": "vision", "label": "face", "score": 0.9, "phase": "start",
        "started_at": NOW, "ts": NOW, "box": [0.1, 0.1, 0.5, 0.5], "track_id": 1,
        "model": {"name": "blazeface-short", "version": "1", "sha256": "abcdef"},
        "latency_ms": 3.0,
    }  # fmt: skip


def batch(device: str = "cam-1", **over: object) -> bytes:
    doc: dict[str, object] = {
        "v": 1,
        "device_id": device,
        "boot_id": BOOT,
        "events": [event(device)],
    }
    doc.update(over)
    return json.dumps(doc).encode()


GOOD = batch()


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{P}/cam-1/events", b"\x00\xffnot json", "not_json"),
        (f"{P}/cam-1/events", GOOD[: len(GOOD) // 2], "not_json"),  # truncated
        (f"{P}/cam-1/events", b"[1, 2, 3]", "bad_schema"),
        (f"{P}/cam-1/events", batch(events="lots"), "bad_schema"),  # wrong type
        (f"{P}/cam-1/events", batch(events=[{**event(), "seq": "seven"}]), "bad_schema"),
        (f"{P}/cam-1/events", batch(events=[{**event(), "score": 7.5}]), "bad_schema"),
        (f"{P}/cam-1/events", batch(events=[{**event(), "extra": 1}]), "bad_schema"),
        (f"{P}/cam-1/events", batch(events=[]), "bad_schema"),
        (f"{P}/cam-1/events", b"{" + b" " * (1024 * 1024) + b"}", "too_large"),
        (f"{P}/cam-2/events", GOOD, "device_mismatch"),
        (f"{P}/cam-1/events", batch(v=2), "bad_version"),
        (f"{P}/cam-1/events", batch(v="1"), "bad_version"),
        (f"{P}/cam-1/cmd/config", GOOD, "bad_topic"),  # the hub's own commands
        (f"{P}/cam-1/nope", GOOD, "bad_topic"),
        ("other/cam-1/events", GOOD, "bad_topic"),
        (f"{P}/cam-1/status", b'{"v":1,"device_id":"cam-1","state":"dancing"}', "bad_schema"),
        (f"{P}/cam-1/status", b'{"v":1,"device_id":"cam-9","state":"online"}', "device_mismatch"),
        (f"{P}/cam-1/telemetry", b'{"v":1,"device_id":"cam-1"}', "bad_schema"),
        (f"{P}/cam-1/cmd/config/reply", b'{"v":1,"id":"x"}', "bad_schema"),
    ],
)
def test_hostile_payloads_are_rejected_with_a_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    got = decode(P, topic, payload)
    assert isinstance(got, Rejected), got
    assert got.reason == reason, got.detail


def test_valid_messages_decode_to_their_models() -> None:
    b = decode(P, f"{P}/cam-1/events", GOOD)
    assert isinstance(b, EventBatchV1) and b.events[0].label == "face"
    s = decode(P, f"{P}/cam-1/status", b'{"v":1,"device_id":"cam-1","state":"offline"}')
    assert isinstance(s, StatusV1) and s.state == "offline"
    tel = {"v": 1, "device_id": "cam-1", "boot_id": BOOT, "ts": NOW, "uptime_s": 1.0,
           "outbox": {"depth": 0, "oldest_age_s": 0.0, "dropped": 0}, "reconnects": 0}  # fmt: skip
    assert isinstance(decode(P, f"{P}/cam-1/telemetry", json.dumps(tel).encode()), TelemetryV1)
    r = decode(P, f"{P}/cam-1/cmd/config/reply", b'{"v":1,"id":"r1","command":"config","ok":true}')
    assert isinstance(r, Reply) and r.command == "config" and r.reply.ok


def test_size_cap_is_configurable() -> None:
    assert isinstance(decode(P, f"{P}/cam-1/events", GOOD, max_payload=len(GOOD)), EventBatchV1)
    got = decode(P, f"{P}/cam-1/events", GOOD, max_payload=len(GOOD) - 1)
    assert isinstance(got, Rejected) and got.reason == "too_large"
