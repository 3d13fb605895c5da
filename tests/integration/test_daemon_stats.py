"""``Daemon.stats()``: a typed ``DeviceStats`` from a real run, and the telemetry built from it.

Ground truth: the face video (tests/fixtures/video.py), 240 frames, faces in 30-89 and
150-209; one video stream with BlazeFace short, one jsonl sink.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud_sync.outbox import OutboxStats
from cloud_sync.schema import TelemetryV1
from cloud_sync.telemetry import Telemetry
from edge.config import load_config
from edge.daemon import Daemon
from edge.stats import DeviceStats, SinkStats
from tests.fixtures.video import DEFAULT_SPANS, face_video

pytestmark = pytest.mark.slow


def test_stats_of_a_finished_run_are_typed_and_make_valid_telemetry(tmp_path: Path) -> None:
    video = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)[0]
    path = tmp_path / "edge.toml"
    path.write_text(f"""\
device_id = "stats-dev"
data_dir = "{tmp_path / "data"}"

[[streams]]
name = "cam"
source = "{video}"
detectors = ["face"]
thresholds = {{ face = 0.6 }}

[detectors.face]
model = "blazeface-short"

[[sinks]]
type = "jsonl"
path = "{tmp_path / "events.jsonl"}"

[health]
enabled = false
""")
    d = Daemon(path, load_config(path))
    d.start()
    try:
        running = d._running
        assert running is not None and running.runners[0].done.wait(60)
        st = d.stats()
    finally:
        d.shutdown()
    assert isinstance(st, DeviceStats) and st.device_id == "stats-dev"
    cam = st.streams["cam"]
    assert (cam.kind, cam.live, cam.frames_in, cam.processed, cam.dropped) == (
        "video", False, 240, 240, 0,
    )  # fmt: skip
    assert cam.ended and cam.error is None and cam.events["start"] == 2 and cam.events["end"] == 2
    assert set(cam.queue_depth) == {"capture", "post"}
    face = st.detectors["face"]
    assert face.model == "blazeface-short" and len(face.sha256) == 12
    assert face.calls == 240 and set(face.inference_ms) == {"cam"} and face.inference_ms["cam"] > 0
    assert face.accelerator is not None and face.accelerator["fallback"] is None
    assert face.accelerator["backend"] in ("tflite", "onnx") and face.accelerator["active"]
    assert st.sinks == {"jsonl": SinkStats(failures=0, events_lost=0)}
    assert st.events == sum(cam.events.values())  # every event the stream made was emitted
    empty = OutboxStats(depth=0, bytes=0, oldest_age_s=0.0, dropped=0, rejected=0, next_seq=0)
    t = Telemetry("stats-dev", st.boot_id).build(st, empty, reconnects=0)
    assert t.build_errors == 0 and t.errors == []
    assert t.streams["cam"].frames_in == 240 and t.detectors["face"].calls == 240
    assert t.detectors["face"].accelerator == face.accelerator
    TelemetryV1.model_validate_json(t.model_dump_json(exclude_none=True))
    doc = json.loads(json.dumps(st.to_json()))  # the health endpoint's form: plain JSON
    assert doc["streams"]["cam"]["frames_in"] == 240 and doc["sinks"]["jsonl"]["failures"] == 0
