"""The hub's default MQTT client id, seen by a real mosquitto: neither host name nor port in
it, the same after a restart (the broker queued what came meanwhile: the persistent
session survived), another for a second worker, and never published to devices."""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.schema import hub_online_topic, topic
from edge.demo.broker import free_port
from tests.support.mosquitto import Broker

from .hub_support import HubProc, Publisher, make_batch, wait_for

pytestmark = pytest.mark.slow


class OnlineListener:
    """What every device hears: the hub-online announcements."""

    def __init__(self, port: int, prefix: str) -> None:
        self.seen: list[dict[str, object]] = []
        ready = threading.Event()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"dev-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.c.on_message = lambda _c, _u, m: self.seen.append(json.loads(m.payload))
        self.c.on_subscribe = lambda *_a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(hub_online_topic(prefix), qos=1)
        self.c.loop_start()
        assert ready.wait(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def stored(hub: HubProc, device: str) -> int:
    return sum(d["events"] for d in hub.get("/api/devices")["devices"] if d["device_id"] == device)


def test_the_default_client_id_is_unguessable_and_keeps_its_session(tmp_path: Path) -> None:
    # log_type notice: mosquitto logs "New client connected from … as <client id> (…)"
    broker = Broker(tmp_path / "mosquitto", free_port(), extra="log_type notice").start()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    db, http_port, boot = f"sqlite:///{tmp_path}/hub.db", free_port(), str(uuid.uuid4())
    pub = Publisher(broker.port)
    online = OnlineListener(broker.port, prefix)
    hubs: list[HubProc] = []
    try:
        hub = HubProc(db, broker.port, prefix, tmp_path / "h1.log", http_port=http_port)
        hubs.append(hub)
        first = make_batch("cam-i", boot, range(0, 50))
        pub.publish(topic(prefix, "cam-i", "events"), [first.model_dump_json().encode()])
        wait_for(lambda: stored(hub, "cam-i") == 50)
        hub.stop()
        for start in range(50, 250, 50):  # the hub is down: its session queues these
            batch = make_batch("cam-i", boot, range(start, start + 50))
            pub.publish(topic(prefix, "cam-i", "events"), [batch.model_dump_json().encode()])
        hub = HubProc(db, broker.port, prefix, tmp_path / "h2.log", http_port=http_port)
        hubs.append(hub)
        wait_for(lambda: stored(hub, "cam-i") == 250)
        assert hub.get("/api/gaps") == {"gaps": []}
        assert "session present: True" in (tmp_path / "h2.log").read_text()
        # a second worker on the same database
        other = HubProc(db, broker.port, prefix, tmp_path / "h3.log")
        hubs.append(other)
        wait_for(lambda: len(online.seen) >= 3)
    finally:
        for h in hubs:
            h.stop()
        online.close()
        pub.close()
        broker.stop()
    log = (tmp_path / "mosquitto" / "mosquitto.log").read_text()
    ids = re.findall(r"New client connected from \S+ as (edge-hub-\S+) \(", log)
    assert len(ids) == 3, log[-2000:]
    assert ids[0] == ids[1] != ids[2]  # stable across the restart; per worker
    for cid in ids:  # HMAC digits only: not the host name and port (edge-hub-<host>-<port>)
        assert re.fullmatch(r"edge-hub-[0-9a-f]{24}", cid), cid
        for h in hubs:  # not in the hub's own log
            assert cid not in h.log.read_text()
    # the devices hear a label per worker, not the id that would let them take its session
    labels = {m["hub"] for m in online.seen}
    assert len(labels) == 2 and not labels & set(ids)
