"""A snapshot that came before its event, acknowledged to the broker, survives ``kill -9``
of the hub: the restarted hub loads it from the database and stores it when the event
comes (before migration 6 it waited in memory only and was lost).

A real mosquitto on a free port, a real ``edge-hub serve`` on SQLite, killed by PID.
Ground truth: one track (start + end event), its ``start`` snapshot (scikit-image's
astronaut, 320×240) sent first, alone.
"""

from __future__ import annotations

import signal
import threading
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.schema import topic
from tests.integration.hub_support import HubProc, Publisher, wait_for
from tests.support.mosquitto import start_broker
from tests.support.snapshots import batch, jpeg, message, track

pytestmark = pytest.mark.slow

DEV = "cam-1"


class _Online:
    """Waits for the hub's ``<prefix>/_hub/online``, sent once its subscriptions are in."""

    def __init__(self, port: int, prefix: str) -> None:
        self.got = threading.Event()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"online-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.c.on_message = lambda *_a: self.got.set()
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *_a: subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(f"{prefix}/_hub/online", qos=1)
        assert subscribed.wait(10)

    def wait(self) -> None:
        try:
            assert self.got.wait(20), "the hub did not say it is online"
        finally:
            self.c.disconnect()
            self.c.loop_stop()


def _snaps(hub: HubProc) -> dict[str, int]:
    _code, body = hub.health()
    return body["snapshots"] if isinstance(body, dict) else {}


def test_a_waiting_snapshot_survives_kill_9_of_the_hub(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    pic = jpeg("astronaut")
    start, end = track(DEV, boot, 1)
    broker = start_broker(tmp_path / "mq")
    db = f"sqlite:///{tmp_path}/hub.db"
    hub = HubProc(db, broker.port, prefix, tmp_path / "hub1.log")
    pub = Publisher(broker.port)
    try:
        pub.publish(topic(prefix, DEV, "snapshots"), [message(DEV, start.id, "start", pic)])
        wait_for(lambda: _snaps(hub).get("pending") == 1, timeout=15)
        hub.p.send_signal(signal.SIGKILL)  # the broker has its PUBACK: it will not resend
        hub.p.wait(10)
        online = _Online(broker.port, prefix)
        # the same port, so the same client id and MQTT session: a service restarted
        hub = HubProc(db, broker.port, prefix, tmp_path / "hub2.log", http_port=hub.port)
        online.wait()  # subscribed: an event published now reaches it
        assert _snaps(hub).get("pending") == 1, _snaps(hub)  # loaded from the database
        pub.publish(topic(prefix, DEV, "events"), [batch(start, end)])
        wait_for(lambda: _snaps(hub).get("stored") == 1, timeout=15)
        assert _snaps(hub).get("pending") == 0
        with urllib.request.urlopen(hub.url(f"/api/events/{start.id}/snapshot"), timeout=10) as r:
            assert r.read() == pic  # byte-exact, after the kill
    finally:
        pub.close()
        hub.stop()
        broker.stop()
