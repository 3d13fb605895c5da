"""Device identity: with examples/mosquitto/acl a device can publish only under its own id
(the ACL file alone, on a plain listener; the whole shipped config: test_sync_identity.py)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.schema import decode_snapshot
from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from edge.demo.broker import free_port
from tests.support.mosquitto import Broker
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events
from tests.support.snapshot_data import snapshot

REPO = Path(__file__).resolve().parents[2]
ACL = REPO / "examples" / "mosquitto" / "acl"
USERS = {"cam1": "secret-1", "cam2": "secret-2", "_hub-1": "hub-secret"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd"),
]


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user, pw in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    extra = f"acl_file {ACL}\npassword_file {passwd}\nallow_anonymous false\n"
    b = Broker(tmp_path / "broker", free_port(), extra=extra).start()
    yield b
    b.stop()


def device_cfg(tmp_path: Path, port: int, user: str, pw: str) -> SyncConfig:
    f = tmp_path / f"{user}.pw"
    f.write_text(pw + "\n")
    return SyncConfig(
        port=port, username=user, password_file=f, reconnect_min_s=0.05, reconnect_max_s=0.2
    )


def publish_as(port: int, user: str, topic: str, protocol: MQTTProtocolVersion) -> int | None:
    """QoS 1 publish as ``user``; the PUBACK reason code (v5), 0 for v3.1.1, None if no PUBACK."""
    acks: list[ReasonCode] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-raw", protocol=protocol)
    c.username_pw_set(user, USERS[user])

    def on_publish(client: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        acks.append(rc)
        done.set()

    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, b'{"v":1,"forged":true}', 1)
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return int(acks[0].value) if acks else None


def test_device_publishes_under_its_own_id_only(broker: Broker, tmp_path: Path) -> None:
    hub = Subscriber(broker.port, auth=("_hub-1", USERS["_hub-1"]), ack=True)
    shot = snapshot()
    with MqttSink(device_cfg(tmp_path, broker.port, "cam1", USERS["cam1"]), "cam1", tmp_path) as s:
        s.emit_many(make_events(5))
        s.emit_snapshot(shot)
        assert s.publisher.wait_drained(10)  # the hub may write cam1/ack and cam1 may read it
        deadline = time.monotonic() + 10
        while s.snapshots.stats().queued and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.snapshots.stats().sent == 1  # the ACL lets a device publish its snapshots
    assert hub.wait_seqs([0, 1, 2, 3, 4], 5)
    with hub.lock:
        pictures = [p for t, p in hub.raw if t == "edgewise/v1/cam1/snapshots"]
    assert [decode_snapshot(p)[1] for p in pictures] == [shot.jpeg]

    # MQTT v5: mosquitto 2.0.11 answers 0x87 "Not authorized" in the PUBACK
    assert (
        publish_as(broker.port, "cam1", "edgewise/v1/cam2/events", MQTTProtocolVersion.MQTTv5)
        == 0x87
    )
    # MQTT 3.1.1 has no reason codes: the broker acks and drops it
    assert (
        publish_as(broker.port, "cam1", "edgewise/v1/cam2/status", MQTTProtocolVersion.MQTTv311)
        == 0
    )
    assert (
        publish_as(broker.port, "cam1", "edgewise/v1/cam2/snapshots", MQTTProtocolVersion.MQTTv5)
        == 0x87
    )
    # a device may not acknowledge for another (it would make cam1 delete undelivered rows)
    assert (
        publish_as(broker.port, "cam2", "edgewise/v1/cam1/ack", MQTTProtocolVersion.MQTTv5) == 0x87
    )
    # its own topic is accepted (0x10 "no matching subscribers" is a success code)
    assert publish_as(
        broker.port, "cam2", "edgewise/v1/cam2/telemetry", MQTTProtocolVersion.MQTTv5
    ) in (0, 0x10)
    time.sleep(0.5)
    with hub.lock:
        forged = [b for b in hub.batches if b.device_id == "cam2"]
        cam2_status = [st for st in hub.statuses if st.get("forged")]
    assert forged == [] and cam2_status == []
    assert len(hub.batches) >= 1 and all(b.device_id == "cam1" for b in hub.batches)
    assert [t for t, _ in hub.invalid] == ["edgewise/v1/cam2/telemetry"]  # cam2's own, allowed
    hub.close()


def test_wrong_password_means_not_connected(broker: Broker, tmp_path: Path) -> None:
    cfg = device_cfg(tmp_path, broker.port, "cam1", "wrong")
    with MqttSink(cfg, "cam1", tmp_path) as sink:
        sink.emit_many(make_events(3))
        assert not sink.publisher.connected.wait(
            1.5
        )  # CONNACK 'not authorized' is not a connection
        assert sink.publisher.connects == 0
        assert sink.outbox.stats().depth == 3  # kept for when the credentials are fixed
