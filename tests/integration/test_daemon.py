"""``edge run`` as a process: SIGTERM, SIGHUP, /healthz, /metrics, a live source that dies.

Ground truth: the face video (tests/fixtures/video.py) has faces in frames 30–89
and 150–209 of 240, so a looped real-time run starts face events within ~1.2 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import get, metric, sample, wait_for

pytestmark = pytest.mark.slow
EDGE = [sys.executable, "-m", "edge.cli.main"]
SERVER = Path(__file__).with_name("mjpeg_server.py")


def config(tmp: Path, source: str, port: int, extra: str = "") -> str:
    return f"""\
device_id = "test-dev"
data_dir = "{tmp / "data"}"

[[streams]]
name = "cam"
source = "{source}"
detectors = ["face"]
thresholds = {{ face = 0.6 }}
{extra}
[detectors.face]
model = "blazeface-short"

[[sinks]]
type = "jsonl"
path = "events.jsonl"

[health]
port = {port}
"""


def events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)[0]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(cfg: Path) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [*EDGE, "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "daemon.log").open("w"),  # closed with the process
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigterm_mid_run_exits_0_in_5s_and_ends_every_event(
    tmp_path: Path, video: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    port = free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(config(tmp_path, str(video), port, "loop = true\nrealtime = true\n"))
    proc = daemon(cfg)
    sink = tmp_path / "events.jsonl"
    wait_for(lambda: any(e["phase"] == "start" for e in events(sink)), 30, "a start event")
    code, body = get(port, "/healthz")
    assert code == 200
    comps = json.loads(body)["components"]  # every thread and sink, each healthy
    assert {"sink.jsonl", "health"} <= set(comps)
    assert sum(name.startswith("cam") for name in comps) >= 3  # capture, infer, post
    assert all(c["ok"] and c["restarts"] == 0 for c in comps.values()), comps
    accel = json.loads(body)["accelerators"]  # what each detector really runs on
    assert {a["active"] for per_stream in accel.values() for a in per_stream.values()} == {
        "XNNPACK"
    }, accel
    status, text = get(port, "/metrics")
    assert status == 200 and sample(text, "edgewise_frames_processed_total") > 30
    assert sample(text, "edgewise_accelerator_fallbacks_total") == 0
    # mid-event: frames 30–89 hold a face; a start has come, its end has not
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 5
    evs = events(sink)
    starts = {(e["stream"], e["track_id"]) for e in evs if e["phase"] == "start"}
    ends = {(e["stream"], e["track_id"]) for e in evs if e["phase"] == "end"}
    assert starts and starts == ends
    assert {e["device_id"] for e in evs} == {"test-dev"}


def test_sighup_with_broken_config_keeps_the_old_one(
    tmp_path: Path, video: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    port = free_port()
    cfg = tmp_path / "device.toml"
    good = config(tmp_path, str(video), port, "loop = true\nrealtime = true\n")
    cfg.write_text(good)
    proc = daemon(cfg)
    wait_for(lambda: get(port, "/healthz")[0] == 200, 30, "healthy")
    cfg.write_text(good.replace("[detectors.face]", "[detectors.face]\nthreadz = 2"))
    proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: metric(port, "edgewise_config_reload_failures_total") == 1,
        10,
        "rejection",
    )
    before = metric(port, "edgewise_frames_in_total")
    time.sleep(0.6)
    assert proc.poll() is None
    assert metric(port, "edgewise_frames_in_total") > before  # old config runs
    assert get(port, "/healthz")[0] == 200
    log = (tmp_path / "daemon.log").read_text()
    assert "reload rejected" in log and "detectors.face.threadz" in log
    # a valid change is applied
    cfg.write_text(good.replace("face = 0.6", "face = 0.7"))
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(port, "edgewise_config_reloads_total") == 1, 15, "reload")
    wait_for(lambda: get(port, "/healthz")[0] == 200, 10, "healthy after reload")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_live_mjpeg_source_that_dies_is_reconnected(
    tmp_path: Path, video: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    cam_port, port = free_port(), free_port()

    def server() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(SERVER), str(cam_port), str(video)])

    srv = server()
    try:
        cfg = tmp_path / "device.toml"
        extra = "stall_timeout_s = 2\nreconnect_min_s = 0.2\nreconnect_max_s = 1\n"
        cfg.write_text(config(tmp_path, f"http://127.0.0.1:{cam_port}/cam.mjpg", port, extra))
        proc = daemon(cfg)
        wait_for(lambda: metric(port, "edgewise_frames_in_total") > 20, 30, "frames")
        assert get(port, "/healthz")[0] == 200
        srv.kill()
        srv.wait()
        wait_for(lambda: get(port, "/healthz")[0] == 503, 10, "unhealthy while the camera is gone")
        srv = server()
        wait_for(
            lambda: metric(port, "edgewise_reconnects_total") >= 1,
            20,
            "reconnect",
        )
        wait_for(lambda: get(port, "/healthz")[0] == 200, 10, "healthy again")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        srv.kill()
        srv.wait()


def test_unreadable_source_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "device.toml"
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(os.urandom(4096))
    cfg.write_text(config(tmp_path, str(bad), free_port()))
    r = subprocess.run(
        [*EDGE, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("edge: error: ") and "corrupt.avi" in last and "Traceback" not in r.stderr
    )
