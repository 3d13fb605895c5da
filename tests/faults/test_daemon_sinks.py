"""issue 10 case 5 (daemon side): sink failures were only logged: a failed write lost that
frame's events with one log line and no counter. Now the fanout counts failures and lost
events per sink (`edgewise_sink_failures_total{sink}`, `edgewise_events_lost_total{sink}`),
logs once per distinct error, the sink's health goes red (/healthz 503 naming it), and the
other sinks carry on."""

from __future__ import annotations

import json
from pathlib import Path

from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import EdgeRun, device_toml, healthz, metric, wait_for

# a full disk, for real: every write to /dev/full fails with ENOSPC
SINKS = """\
[[sinks]]
type = "jsonl"
path = "/dev/full"

[[sinks]]
type = "jsonl"
path = "good.jsonl"
"""


def test_full_disk_sink_is_counted_red_and_logged_once(tmp_path: Path) -> None:
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    port = free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(tmp_path / "data", video, health_port=port, sinks=SINKS))
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    try:
        wait_for(
            lambda: metric(port, "edgewise_sink_failures_total", 'sink="jsonl"') >= 3,
            40,
            "three failed writes",
        )
        lost = metric(port, "edgewise_events_lost_total", 'sink="jsonl"')
        assert lost >= 3  # at least one event per failed write
        assert metric(port, "edgewise_sink_failures_total", 'sink="jsonl#2"') == 0
        assert metric(port, "edgewise_events_lost_total", 'sink="jsonl#2"') == 0
        good = [json.loads(x) for x in (tmp_path / "good.jsonl").read_text().splitlines()]
        assert len(good) >= lost  # the healthy sink got every event the full one lost
        code, body = healthz(port)
        assert code == 503 and body["ok"] is False
        comp = body["components"]["sink.jsonl"]
        assert comp["ok"] is False and "No space left on device" in comp["reason"]
        assert "event(s) lost" in comp["reason"]
        assert body["components"]["sink.jsonl#2"]["ok"] is True
        assert metric(port, "edgewise_component_up", 'component="sink.jsonl"') == 0
        assert metric(port, "edgewise_component_up", 'component="sink.jsonl#2"') == 1
        # one log line for one distinct error, however many writes failed
        log = daemon.log()
        assert log.count("sink jsonl: write failed") == 1, log[-3000:]
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
