"""issue 10 case 16: a `config` command that changes `[sync]` was applied and never answered
("reply not sent, the broker is not connected"): the reply went to the old MqttSink, whose
publisher the reload had just replaced. Now replies go through the daemon's reply route,
which the live sink holds: the new connection carries the answer. End to end: a real
`edge run`, a real mosquitto, the command and its reply over MQTT."""

from __future__ import annotations

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


def test_config_command_that_changes_sync_is_answered(tmp_path: Path) -> None:
    video, _ = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)
    broker = start_broker(tmp_path / "broker")
    port = free_port()
    cfg = tmp_path / "device.toml"
    old = device_toml(tmp_path / "data", video, health_port=port, sinks=MQTT_SINK,
                      sync=sync_toml(broker.port, telemetry_interval_s=10))  # fmt: skip
    new = old.replace("telemetry_interval_s = 10", "telemetry_interval_s = 7")
    cfg.write_text(old)
    daemon = EdgeRun(cfg, tmp_path / "daemon.log")
    hub = Hub(broker.port, "fault-dev")
    try:
        hub.wait_online()
        wait_for(lambda: get(port, "/healthz")[0] == 200, 40, "healthy")
        seen = len(hub.statuses)
        reply = hub.command("config", {"toml": new}, timeout=30)
        assert reply["ok"] is True, reply
        assert reply["command"] == "config"
        assert cfg.read_text() == new
        assert "reply not sent" not in daemon.log()
        # the new sink is the one connected now, and it answers the next command too
        hub.wait_online(after=seen)
        assert metric(port, "edgewise_config_reloads_total") == 1
        again = hub.command("config", {"toml": new.replace("0.6", "0.65")}, timeout=30)
        assert again["ok"] is True, again  # [sync] unchanged: the same sink answers
        wait_for(lambda: get(port, "/healthz")[0] == 200, 20, "healthy after")
        assert daemon.terminate() == 0
    finally:
        hub.close()
        daemon.kill()
        broker.stop()
