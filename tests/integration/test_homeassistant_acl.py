"""The shipped mosquitto ACL (examples/mosquitto/acl) and Home Assistant: a device
announces its own entities through the real mqtt sink and Home Assistant's login sees them;
a device may not write another node's discovery topics nor Home Assistant's birth
message, and only Home Assistant's login reads the discovery prefix."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.sink import MqttSink
from edge.config import parse_config
from tests.support.shipped_broker import HOME_ASSISTANT, Fleet, Variant, shipped_broker

pytestmark = pytest.mark.slow

DENIED = 0x87  # MQTT 5 "Not authorized"
OK = (0, 0x10)  # accepted (0x10: no subscribers)


@pytest.fixture(params=["password", "mtls"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    variant: Variant = request.param
    with shipped_broker(tmp_path, variant) as f:
        yield f


def test_shipped_acl_lets_a_device_announce_only_its_own_entities(
    fleet: Fleet, tmp_path: Path
) -> None:
    ha = fleet.client(HOME_ASSISTANT, "home-assistant")
    cam2 = fleet.client("cam-2", "cam-2")
    try:
        assert ha.subscribe("homeassistant/#", "edgewise/v1/+/status") == [1, 1]
        cam2.subscribe("homeassistant/#")  # granted by mosquitto 2, filtered on delivery
        text = """\
homeassistant = true
device_id = "cam-1"
data_dir = "{data}"
[[streams]]
name = "door"
source = "door.avi"
detectors = ["face"]
[detectors.face]
model = "blazeface-short"
[[sinks]]
type = "mqtt"
[sync]
port = 1
""".format(data=tmp_path / "data")
        cfg = parse_config(text, "device.toml")  # its [sync] is the fleet's, below
        sync = fleet.device_sync("cam-1", delivery="broker")
        config = "homeassistant/binary_sensor/cam-1/door_face/config"
        with MqttSink(sync, "cam-1", cfg.data_dir, device=cfg):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and config not in [t for t, _ in ha.messages]:
                time.sleep(0.05)
        seen = {t for t, _ in ha.messages}
        assert config in seen and config.replace("/config", "/state") in seen, fleet.log()[-3000:]
        assert "edgewise/v1/cam-1/status" in seen  # availability: Home Assistant reads it
        assert ha.publish("homeassistant/status", b"online") in OK  # its birth message
        # a device: not another node's entities, not Home Assistant's birth message
        assert cam2.publish("homeassistant/binary_sensor/cam-2/x/config", b"{}") in OK
        assert cam2.publish("homeassistant/binary_sensor/cam-1/x/config", b"") == DENIED
        assert cam2.publish("homeassistant/sensor/cam-1/x/state", b"9") == DENIED
        assert cam2.publish("homeassistant/status", b"online") == DENIED
        time.sleep(0.3)
        assert [t for t, _ in cam2.messages] == ["homeassistant/status"]  # the birth only
    finally:
        ha.close()
        cam2.close()
