"""issue 10 case 3: two daemons on one data_dir shared the outbox (telemetry crashed, the
sync-send thread died, both boots reused seqs) while the first one's health stayed ok and
it exited 0. Now one writer per data dir: the second `edge run` is refused with one line
naming the PID that holds `<data_dir>/edgewise.lock`, and the first runs on untouched."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import MQTT_SINK, EdgeRun, device_toml, get, metric, sync_toml, wait_for
from tests.support.mosquitto import start_broker


def test_second_daemon_on_a_data_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    broker = start_broker(tmp_path / "broker")
    data = tmp_path / "data"
    port1, port2 = free_port(), free_port()
    cfg1, cfg2 = tmp_path / "one.toml", tmp_path / "two.toml"
    cfg1.write_text(
        device_toml(data, video, health_port=port1, sinks=MQTT_SINK, sync=sync_toml(broker.port))
    )
    cfg2.write_text(
        device_toml(data, video, health_port=port2, sinks=MQTT_SINK, sync=sync_toml(broker.port))
    )
    first = EdgeRun(cfg1, tmp_path / "one.log")
    second: EdgeRun | None = None
    try:
        wait_for(lambda: get(port1, "/healthz")[0] == 200, 40, "the first daemon healthy")
        second = EdgeRun(cfg2, tmp_path / "two.log")
        rc = second.wait(40)
        assert rc == 3
        assert (data / "edgewise.lock").read_text().strip() == str(first.pid)
        lines = [x for x in second.log().splitlines() if x.strip()]
        last = lines[-1]
        assert last.startswith("edge: error: ") and f"PID {first.pid}" in last, lines
        assert str(data) in last and "Traceback" not in second.log()
        assert get(port2, "/healthz")[0] == 0  # it never got as far as listening
        # the first one noticed nothing: healthy, still committing, exits 0 on SIGTERM
        before = metric(port1, "edgewise_events_emitted_total")
        wait_for(lambda: metric(port1, "edgewise_events_emitted_total") > before, 20, "more events")
        assert get(port1, "/healthz")[0] == 200
        assert first.terminate() == 0
        assert (data / "edgewise.lock").read_text() == ""  # released, nobody named
    finally:
        first.kill()
        if second is not None:
            second.kill()
        broker.stop()


def test_lock_of_a_killed_daemon_does_not_block_its_restart(tmp_path: Path) -> None:
    """flock dies with the process: after kill -9 the next start takes the lock at once."""
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    data, port = tmp_path / "data", free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(data, video, health_port=port))
    first = EdgeRun(cfg, tmp_path / "one.log")
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        first.proc.send_signal(signal.SIGKILL)
        first.wait(10)
        assert (data / "edgewise.lock").read_text().strip() == str(first.pid)  # stale file
        again = EdgeRun(cfg, tmp_path / "two.log")
        try:
            wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "the restart healthy")
            assert again.terminate() == 0
        finally:
            again.kill()
    finally:
        first.kill()


@pytest.mark.parametrize("held", [True, False], ids=["held-by-another", "free"])
def test_reload_to_another_data_dir_takes_its_lock_first(tmp_path: Path, held: bool) -> None:
    """SIGHUP to a data dir another daemon holds is rejected (old one runs on); to a free
    one it locks the new dir and then lets go of the old."""
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    port, other_port = free_port(), free_port()
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(old_dir, video, health_port=port))
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    other: EdgeRun | None = None
    try:
        if held:
            other_cfg = tmp_path / "other.toml"
            other_cfg.write_text(device_toml(new_dir, video, health_port=other_port))
            other = EdgeRun(other_cfg, tmp_path / "other.log")
            wait_for(lambda: get(other_port, "/healthz")[0] == 200, 40, "the other healthy")
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        cfg.write_text(device_toml(new_dir, video, health_port=port))
        daemon.proc.send_signal(signal.SIGHUP)
        if held:
            assert other is not None
            pid = other.pid
            wait_for(lambda: f"PID {pid}" in daemon.log(), 20, "the rejection naming the holder")
            assert metric(port, "edgewise_config_reload_failures_total") == 1
            assert (old_dir / "edgewise.lock").read_text().strip() == str(daemon.pid)
            assert (new_dir / "edgewise.lock").read_text().strip() == str(other.pid)
        else:
            wait_for(lambda: metric(port, "edgewise_config_reloads_total") == 1, 20, "reload")
            assert (new_dir / "edgewise.lock").read_text().strip() == str(daemon.pid)
            wait_for(
                lambda: (old_dir / "edgewise.lock").read_text() == "", 10, "the old lock released"
            )
        wait_for(lambda: get(port, "/healthz")[0] == 200, 20, "healthy after")
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
        if other is not None:
            other.kill()
