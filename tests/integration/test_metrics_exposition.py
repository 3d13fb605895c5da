"""Every ``/metrics`` exposition, parsed as Prometheus parses it: the device daemon's
(a real ``edge run``) and the hub's (a real ``edge-hub serve`` after real traffic; an
in-process ``Hub``: tests/unit/test_metrics_exposition.py). Each family has a type and
HELP, counters end in ``_total``, times are in seconds, every family is in
docs/metrics.md, and a counter above 10^6 comes out exactly (the hand-made text
printed 12345678 as ``1.23457e+07``).

Ground truth: the face video (tests/fixtures/video.py), faces in frames 30-89 and
150-209 of 240, looped in real time: a start event within ~1.2 s.
"""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import EdgeRun, get, wait_for
from tests.support.prom import check, documented, exposed_names, value

from .hub_support import HubProc, Publisher, make_batch, make_telemetry, mosquitto, status

pytestmark = pytest.mark.slow
BIG = 12345678  # above 10^6: what "%g" rounded to 1.23457e+07

DAEMON_FAMILIES = {  # what a running stream with a detector and a sink always exposes
    "edgewise_frames_in", "edgewise_frames_processed", "edgewise_events", "edgewise_fps_in",
    "edgewise_queue_depth", "edgewise_stage_seconds", "edgewise_stage_average_seconds",
    "edgewise_stream_up", "edgewise_events_emitted", "edgewise_config_reloads",
    "edgewise_config_reload_failures", "edgewise_accelerator_fallbacks",
    "edgewise_uptime_seconds", "edgewise_component_up", "edgewise_thread_restarts",
    "edgewise_sink_failures", "edgewise_events_lost", "edgewise_snapshots_taken",
    "edgewise_snapshot_encode_seconds", "edgewise_snapshot_queue_depth",
}  # fmt: skip


def device_config(tmp: Path, video: Path, port: int) -> str:
    return f"""\
device_id = "prom-dev"
data_dir = "{tmp / "data"}"

[[streams]]
name = "cam"
source = "{video}"
detectors = ["face"]
thresholds = {{ face = 0.6 }}
loop = true
realtime = true

[detectors.face]
model = "blazeface-short"

[[sinks]]
type = "jsonl"
path = "{tmp / "events.jsonl"}"

[health]
port = {port}
"""


def test_the_daemon_exposition_parses_and_keeps_the_conventions(tmp_path: Path) -> None:
    video = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)[0]
    port = free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_config(tmp_path, video, port))
    # the process-wide fallback counter is the stats object /metrics reads: set it high
    prelude = f"from edge.runtime import base\nbase.accelerator_fallbacks._value = {BIG}"
    run = EdgeRun(cfg, tmp_path / "daemon.log", prelude=prelude)
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 30, "healthy")
        sink = tmp_path / "events.jsonl"
        wait_for(lambda: sink.exists() and '"start"' in sink.read_text(), 30, "a start event")
        code, text = get(port, "/metrics")
    finally:
        assert run.terminate() == 0, run.log()
    assert code == 200
    fams = check(text, "edgewise_")
    assert set(fams) >= DAEMON_FAMILIES, DAEMON_FAMILIES - set(fams)
    assert exposed_names(fams) <= documented(), exposed_names(fams) - documented()
    assert value(text, "edgewise_accelerator_fallbacks_total") == float(BIG)
    assert f"edgewise_accelerator_fallbacks_total {BIG:.7e}" in text  # exact, Go's style
    assert fams["edgewise_accelerator_fallbacks"].type == "counter"  # was typed gauge
    assert value(text, "edgewise_events_emitted_total") >= 1
    # inference time as a histogram: cumulative buckets, +Inf equals the count
    stage = {"stream": "cam", "stage": "face.invoke"}
    n = value(text, "edgewise_stage_seconds_count", **stage)
    assert n >= 30 and value(text, "edgewise_stage_seconds_bucket", le="+Inf", **stage) == n
    buckets = [s.value for s in fams["edgewise_stage_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["stage"] == "face.invoke"]  # fmt: skip
    assert buckets == sorted(buckets) and buckets[0] < n  # no model call takes <= 0.5 ms
    mean = value(text, "edgewise_stage_seconds_sum", **stage) / n
    assert 0.0005 < mean < 1.0, mean  # seconds, not milliseconds
    assert 0.0005 < value(text, "edgewise_stage_average_seconds", **stage) < 1.0
    assert value(text, "edgewise_component_up", component="sink.jsonl") == 1.0


def test_the_hub_exposition_parses_after_real_traffic(tmp_path: Path) -> None:
    prefix, device, boot = f"t{uuid.uuid4().hex[:8]}", "cam-1", str(uuid.uuid4())
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            pub.publish(topic(prefix, device, "status"), [status(device, "online", boot)])
            batch = make_batch(device, boot, range(50))
            pub.publish(topic(prefix, device, "events"), [batch.model_dump_json().encode()])
            tel = make_telemetry(device, boot, 5.0, 12.0)
            pub.publish(topic(prefix, device, "telemetry"), [tel.model_dump_json().encode()])
            pub.publish(topic(prefix, device, "events"), [b"{not json"])

            def scrape() -> str:
                return str(urllib.request.urlopen(hub.url("/metrics"), timeout=5).read().decode())

            wait_for(lambda: value(scrape(), "edge_hub_events_stored_total") == 50, 10, "stored")
            text = scrape()
        finally:
            pub.close()
            hub.stop()
    fams = check(text, "edge_hub_")
    assert exposed_names(fams) == documented_hub(), exposed_names(fams) ^ documented_hub()
    assert value(text, "edge_hub_messages_rejected_total", reason="not_json") == 1
    assert value(text, "edge_hub_devices") == 1 and value(text, "edge_hub_devices_online") == 1
    assert value(text, "edge_hub_messages_received_total", kind="events") == 1
    writes = value(text, "edge_hub_db_write_seconds_count")
    assert writes >= 1 and writes == value(text, "edge_hub_db_batches_total")
    assert value(text, "edge_hub_db_write_seconds_bucket", le="+Inf") == writes
    assert 0 < value(text, "edge_hub_db_write_seconds_sum") < 10 * writes  # seconds
    handled = value(text, "edge_hub_ingest_seconds_count")  # every message, rejected too
    assert handled >= 4 and value(text, "edge_hub_ingest_seconds_bucket", le="+Inf") == handled
    assert 0 < value(text, "edge_hub_ingest_seconds_sum") / handled < 10


def documented_hub() -> set[str]:
    return {n for n in documented() if n.startswith("edge_hub_")}
