"""edge.wire: the bounds every wire field takes, and the config/schema/API using them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from cloud_sync.schema import CommandV1, EventBatchV1, StatusV1, TelemetryV1, topic
from edge import wire


def _event(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": "0190a0b0-0000-7000-8000-000000000001",
        "device_id": "cam-1",
        "boot_id": "0190a0b0-0000-7000-8000-0000000000b0",
        "seq": 7,
        "stream": "front",
        "kind": "vision",
        "label": "face",
        "score": 0.9,
        "phase": "start",
        "started_at": "2026-12-01T10:00:00Z",
        "ts": "2026-12-01T10:00:00Z",
        "box": [0.1, 0.1, 0.5, 0.5],
        "track_id": 3,
        "model": {"name": "blazeface-short", "version": "1", "sha256": "abcdef"},
        "latency_ms": 1.5,
    }
    e.update(over)
    return e


def _batch(**over: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "device_id": "cam-1",
        "boot_id": "0190a0b0-0000-7000-8000-0000000000b0",
        "events": [_event(**over)],
    }


def test_a_good_batch_validates_from_python_and_from_json() -> None:
    EventBatchV1.model_validate(_batch())
    EventBatchV1.model_validate_json(json.dumps(_batch()))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 2**64),
        ("seq", 2**63),
        ("seq", "7"),
        ("seq", True),
        ("track_id", 2**70),
        ("track_id", True),
        ("score", 1.5),
        ("score", float("nan")),
        ("latency_ms", float("inf")),
        ("latency_ms", -1.0),
        ("stream", "s" * 129),
        ("stream", "front\n"),
        ("label", "per\x00son"),
        ("label", ""),
        ("ts", "0001-01-01T00:30:00+01:00"),
        ("ts", "9999-12-31T23:59:59-01:00"),
        ("ts", "1999-12-31T23:59:59Z"),
        ("started_at", "2026-12-01T10:00:00"),  # no offset
        ("box", [0.1, 0.1, 0.5, float("inf")]),
    ],
)
def test_out_of_bounds_event_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        EventBatchV1.model_validate(_batch(**{field: value}))


def test_version_must_be_the_integer_one() -> None:
    b = _batch()
    b["v"] = True
    with pytest.raises(ValidationError):
        EventBatchV1.model_validate(b)


def test_the_largest_int64_seq_is_accepted() -> None:
    EventBatchV1.model_validate(_batch(seq=wire.INT64_MAX))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("cam-1", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("a" * 70, False),
        ("cam-1\n", False),
        ("cam/1", False),
        ("+", False),
        ("-cam", False),
    ],
)
def test_device_id_rule_is_one_rule(value: str, ok: bool) -> None:
    assert wire.is_device_id(value) is ok
    status = {"device_id": value, "state": "online"}
    if ok:
        StatusV1.model_validate(status)
    else:
        with pytest.raises(ValidationError):
            StatusV1.model_validate(status)


def test_command_names_match_whole() -> None:
    assert wire.is_command_name("config")
    assert not wire.is_command_name("config\n")
    assert not wire.is_command_name("Config")
    with pytest.raises(ValueError, match="command name"):
        topic("edgewise/v1", "cam-1", "cmd", "config\n")
    with pytest.raises(ValueError, match="device id"):
        topic("edgewise/v1", "cam/1", "events")


def test_telemetry_refuses_huge_and_infinite_numbers() -> None:
    t: dict[str, Any] = {
        "device_id": "cam-1",
        "boot_id": "0190a0b0-0000-7000-8000-0000000000b0",
        "ts": "2026-12-01T10:00:00Z",
        "uptime_s": 1.0,
        "outbox": {"depth": 0, "oldest_age_s": 0.0, "dropped": 0},
        "reconnects": 0,
    }
    TelemetryV1.model_validate(t)
    for bad in ({"depth": 2**70}, {"oldest_age_s": float("inf")}):
        t2 = {**t, "outbox": {**t["outbox"], **bad}}
        with pytest.raises(ValidationError):
            TelemetryV1.model_validate(t2)


@pytest.mark.parametrize(
    "args",
    [
        {"max_bytes": float("nan")},
        {"x": float("inf")},
        {"n": 2**64},
    ],
)
def test_command_args_are_bounded_json(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CommandV1.model_validate({"id": "c1", "args": args})


def test_command_args_nested_3000_deep_are_refused_without_recursion_error() -> None:
    deep: Any = 1
    for _ in range(3000):
        deep = {"a": deep}
    with pytest.raises(ValidationError):
        CommandV1.model_validate({"id": "c1", "args": deep})


def test_deep_nesting_is_a_value_error_never_a_recursion_error() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValueError, match="deeper"):
        wire.loads(text)
    with pytest.raises(ValueError, match="deeper than 32"):
        wire.check_json_value(wire.loads("[" * 33 + "]" * 33))
    wire.check_json_value(wire.loads("[" * 32 + "]" * 32))


def test_loads_skips_brackets_inside_strings() -> None:
    assert wire.loads('{"a": "[[[["}') == {"a": "[[[["}


@pytest.mark.parametrize(
    "text", ["NaN", '{"a": Infinity}', "[-Infinity]", '{"n": 18446744073709551616}', "[1e400]"]
)
def test_loads_refuses_non_json_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        wire.loads(text)
