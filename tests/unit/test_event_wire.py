"""One serialisation of an event: the JSON Lines sink and the outbox write the same bytes
(the outbox adds ``seq``), and that is valid ``EventV1``; boxes are normalized once."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cloud_sync.outbox import Outbox
from cloud_sync.schema import EventV1
from edge.config import parse_config
from edge.events import Event, ModelRef, uuid7
from edge.pipeline.vision import normalize_box
from edge.sinks import DaemonContext, JsonLinesSink

CONFIG = """device_id = "dev1"
[[streams]]
name = "cam0"
source = "cam.mp4"
detectors = ["face"]
[detectors.face]
model = "blazeface-short"
[[sinks]]
type = "stdout"
"""
MODEL = ModelRef("blazeface-short", "1.0", "0123456789abcdef")


def test_jsonl_line_and_outbox_row_are_the_same_serialisation(tmp_path: Path) -> None:
    boot = uuid7()
    ev = Event("cam0", "vision", "face", 0.912345678, "start", 1.7e9, 1.7e9 + 0.25, MODEL,
               track_id=3, box=(0.1, 0.2, 0.30000001, 0.4), latency_ms=12.345)  # fmt: skip
    cfg = parse_config(CONFIG, "test.toml")
    out = io.StringIO()
    JsonLinesSink(out, DaemonContext("dev1", boot, cfg, tmp_path)).emit(ev)
    line = out.getvalue().rstrip("\n")
    with Outbox(tmp_path / "o.db", "dev1", boot) as ob:
        ob.append([ev])
        row = ob.read(-1, 10)[0]
    assert row.payload == f'{{"seq":{row.seq},' + line[1:]  # byte for byte, plus seq
    assert line == ev.encode("dev1", boot)
    wire = EventV1.model_validate_json(row.payload)
    assert wire.box == [0.1, 0.2, 0.3, 0.4] and wire.score == 0.9123 and wire.device_id == "dev1"
    assert json.loads(line)["model"]["sha256"] == "0123456789ab"


def test_an_event_with_a_pixel_box_is_refused() -> None:
    with pytest.raises(ValueError, match="box must be normalized"):
        Event("cam0", "vision", "face", 0.9, "start", 1.7e9, 1.7e9, MODEL, box=(64, 48, 320, 480))


def test_pixels_become_normalized_in_one_place() -> None:
    assert normalize_box((64.0, 48.0, 320.0, 480.0), 640, 480) == (0.1, 0.1, 0.5, 1.0)
    # a box the detector let spill over the image edge is clipped to it
    assert normalize_box((-10.0, -5.0, 700.0, 500.0), 640, 480) == (0.0, 0.0, 1.0, 1.0)
