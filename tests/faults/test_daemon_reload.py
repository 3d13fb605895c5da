"""issue 10 case 4: a reload that failed with an OSError (a data_dir that cannot be created,
then sent as a cloud `config` command; since issue 11 only a local edit may change it)
stopped the old pipeline without starting a new one; run() then saw every source ended and
exited 0, so Restart=on-failure never restarted the device. Now a reload is transactional
(the new generation is built and checked before the old one stops; any failure keeps the
old one and the reply or log names the cause), and `edge run` never exits 0 because a
reload left nothing running."""

from __future__ import annotations

import signal
from pathlib import Path

from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import (
    MQTT_SINK,
    EdgeRun,
    Hub,
    device_toml,
    get,
    metric,
    sync_toml,
    wait_for,
)
from tests.support.mosquitto import start_broker


def frames(port: int) -> float:
    return metric(port, "edgewise_frames_in_total")


def test_reload_with_an_uncreatable_data_dir_keeps_the_old_pipeline(tmp_path: Path) -> None:
    """Since issue 11 a remote config may not move the data dir at all (the allow-list,
    tests/faults/test_daemon_remote_commands.py); the owner still may, locally, and a
    reload that cannot create it keeps the old pipeline."""
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    broker = start_broker(tmp_path / "broker")
    data, port = tmp_path / "data", free_port()
    cfg = tmp_path / "device.toml"
    good = device_toml(data, video, health_port=port, sinks=MQTT_SINK, sync=sync_toml(broker.port))
    cfg.write_text(good)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    bad_dir = blocker / "data"  # mkdir fails: NotADirectoryError (an OSError), even as root
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    hub = Hub(broker.port, "fault-dev")
    try:
        hub.wait_online()
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        reply = hub.command("config", {"toml": good.replace(str(data), str(bad_dir))})
        assert reply["ok"] is False and "data_dir" in reply["message"], reply
        assert cfg.read_text() == good  # not persisted
        cfg.write_text(good.replace(str(data), str(bad_dir)))  # the owner, on the device
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "old config keeps running" in daemon.log(), 20, "the failure")
        assert str(bad_dir) in daemon.log()
        # the old pipeline was never stopped: frames keep coming, health stays green
        before = frames(port)
        wait_for(lambda: frames(port) > before + 10, 15, "frames after the failed reload")
        assert get(port, "/healthz")[0] == 200
        assert metric(port, "edgewise_config_reload_failures_total") == 1
        assert daemon.proc.poll() is None
        cfg.write_text(good)  # the owner puts it back
        # and it still takes a good config (a threshold change), replying ok
        reply = hub.command("config", {"toml": good.replace("0.6", "0.7")})
        assert reply["ok"] is True, reply
        assert "0.7" in cfg.read_text()
        assert daemon.terminate() == 0
    finally:
        hub.close()
        daemon.kill()
        broker.stop()


def test_reload_whose_stream_cannot_start_restarts_the_old_one(tmp_path: Path) -> None:
    """A failure past the point of no return (the new source cannot be opened once the old
    streams stopped) restarts the old config on its own sinks and models."""
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    data, port = tmp_path / "data", free_port()
    cfg = tmp_path / "device.toml"
    good = device_toml(data, video, health_port=port)
    cfg.write_text(good)
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        cfg.write_text(good.replace(str(video), str(tmp_path / "missing.avi")))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "the old config was restarted" in daemon.log(), 20, "the failure")
        assert metric(port, "edgewise_config_reload_failures_total") == 1
        assert "missing.avi" in daemon.log()
        wait_for(lambda: get(port, "/healthz")[0] == 200, 20, "healthy on the old config")
        before = frames(port)
        wait_for(lambda: frames(port) > before + 10, 15, "frames on the old config")
        assert daemon.terminate() == 0
    finally:
        daemon.kill()


def test_reload_that_leaves_nothing_running_exits_non_zero(tmp_path: Path) -> None:
    """If even the old config cannot restart (its video is gone too), the daemon must not
    look finished: exit 4, one line, so the service manager restarts it."""
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    data, port = tmp_path / "data", free_port()
    cfg = tmp_path / "device.toml"
    good = device_toml(data, video, health_port=port)
    cfg.write_text(good)
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        video.rename(tmp_path / "moved.avi")  # the open capture reads on; a reopen fails
        cfg.write_text(good.replace(str(video), str(tmp_path / "missing.avi")))
        daemon.proc.send_signal(signal.SIGHUP)
        rc = daemon.wait(30)
        assert rc == 4, daemon.log()[-2000:]
        last = daemon.log().strip().splitlines()[-1]
        assert last.startswith("edge: error: ") and "no stream is running" in last
    finally:
        daemon.kill()
