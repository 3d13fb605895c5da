"""Home Assistant end to end: `edge run` on a face video with one line added to its config
(`homeassistant = true`) gives Home Assistant (a checking stand-in on a private mosquitto)
a face binary sensor and a zone count that follow the faces, every config within Home
Assistant's documented fields; a reload that drops the zone removes its entity, a
SIGTERM leaves the device unavailable with its sensor OFF, so does a kill -9 (the broker's
will), and a restart with `homeassistant = false` removes the rest."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import MQTT_SINK, EdgeRun, device_toml, sync_toml
from tests.support.ha_sub import HomeAssistantSim
from tests.support.mosquitto import start_broker

pytestmark = pytest.mark.slow

FACE = "homeassistant/binary_sensor/ha-dev/door_face/config"
ZONE = "homeassistant/sensor/ha-dev/door_zone_hall/config"
ZONE_TOML = (
    '[[streams.zones]]\nname = "hall"\npoints = [[0, 0], [1, 0], [1, 1], [0, 1]]\ninertia = 1\n'
)


def write(path: Path, tmp: Path, video: Path, port: int, *, ha: str, zone: bool) -> None:
    text = device_toml(
        tmp / "data",
        video,
        health_port=None,
        sinks=MQTT_SINK,
        sync=sync_toml(port) + 'delivery = "broker"\n',
        device_id="ha-dev",
        stream="door",
        stream_extra=ZONE_TOML if zone else "",
    )
    path.write_text(ha + text)  # the one line, at the top, where a top-level key goes


def test_one_line_gives_home_assistant_entities_that_follow_the_daemon(tmp_path: Path) -> None:
    video, _ = face_video(tmp_path / "door.avi", 240, DEFAULT_SPANS)
    cfg = tmp_path / "device.toml"
    with start_broker(tmp_path / "broker") as broker:
        ha = HomeAssistantSim(broker.port)
        write(cfg, tmp_path, video, broker.port, ha="homeassistant = true\n", zone=True)
        run = EdgeRun(cfg, tmp_path / "daemon.log")
        try:
            assert ha.wait(lambda: {FACE, ZONE} <= set(ha.configs()), 30), run.log()[-2000:]
            assert ha.wait(lambda: ha.state(FACE) == b"ON", 20), run.log()[-2000:]
            assert ha.wait(lambda: ha.state(ZONE) == b"1", 10)
            assert ha.wait(lambda: ha.state(FACE) == b"OFF", 20)
            assert ha.wait(lambda: ha.state(ZONE) == b"0", 10)
            assert set(ha.configs()) == {FACE, ZONE}
            assert ha.audit() == []
            # reload without the zone: its entity goes, the face sensor stays
            write(cfg, tmp_path, video, broker.port, ha="homeassistant = true\n", zone=False)
            run.proc.send_signal(signal.SIGHUP)
            assert ha.wait(lambda: set(ha.configs()) == {FACE}, 20), run.log()[-2000:]
            assert ha.values(ZONE)[-1] == b""
            assert run.terminate(15) == 0
        finally:
            run.kill()
        status = "edgewise/v1/ha-dev/status"
        assert ha.wait(lambda: b'"stopped"' in ha.retained.get(status, b""))
        assert ha.state(FACE) == b"OFF"  # open tracks were ended on the way out
        assert ha.audit() == []  # availability: "stopped" reads as unavailable
        # the zone back, then kill -9: the broker's will says offline, read as unavailable
        write(cfg, tmp_path, video, broker.port, ha="homeassistant = true\n", zone=True)
        run = EdgeRun(cfg, tmp_path / "daemon-kill.log")
        try:
            assert ha.wait(lambda: set(ha.configs()) == {FACE, ZONE}, 30), run.log()[-2000:]
            assert ha.wait(lambda: b'"online"' in ha.retained.get(status, b""), 10)
        finally:
            run.kill()
        assert ha.wait(lambda: b'"offline"' in ha.retained.get(status, b""), 20)
        assert ha.audit() == []
        # off again: the restart removes what the last run announced
        write(cfg, tmp_path, video, broker.port, ha="homeassistant = false\n", zone=False)
        run = EdgeRun(cfg, tmp_path / "daemon2.log")
        try:
            assert ha.wait(lambda: ha.configs() == {}, 30), run.log()[-2000:]
            assert run.terminate(15) == 0
        finally:
            run.kill()
        assert "door_face/config" not in "".join(ha.retained)
        ha.close()
