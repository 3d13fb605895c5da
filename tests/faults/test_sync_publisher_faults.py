"""issue 10 cases 2 and 16 (device side): the publisher's threads survive exceptions inside
paho callbacks, health tells the truth about the broker link, and a command reply queued
while the publisher is (re)connecting is delivered once it is connected."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_sync.outbox import Outbox, OutboxError
from cloud_sync.publisher import Publisher
from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from edge.events import uuid7
from tests.support.mosquitto import Broker, free_port, start_broker
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events


def cfg(port: int, **kw: Any) -> SyncConfig:
    base: dict[str, Any] = {"port": port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
                            "connect_timeout_s": 2.0, "hub_ack_timeout_s": 2.0}  # fmt: skip
    return SyncConfig.model_validate({**base, **kw})


def test_exception_inside_on_connect_is_counted_and_becomes_a_reconnect(tmp_path: Path) -> None:
    """issue 10 case 2: StatusV1 raising inside paho's on_connect killed the sync-net thread
    for good; nothing reconnected and the outbox grew for ever."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)
    ob = Outbox(tmp_path / "outbox.db", "cam1", uuid7())
    pub = Publisher(cfg(b.port), "cam1", ob)
    real = pub._status
    calls = {"n": 0}

    def flaky(state: str) -> bytes:
        calls["n"] += 1
        if state == "online" and calls["n"] <= 3:
            raise ValueError("device id too long for StatusV1 (injected)")
        return real(state)

    pub._status = flaky  # type: ignore[method-assign]
    try:
        ob.append(make_events(20))
        pub.start()
        assert pub.connected.wait(10), "never connected after the callback errors"
        assert pub.wait_drained(10)
        assert pub.callback_errors == 3 and "injected" in (pub.last_callback_error or "")
        assert sub.wait_seqs(list(range(20)), 5)
        health = {h.name: h for h in pub.health()}
        assert health["sync-net"].ok and health["sync-send"].ok and health["sync-broker"].ok
        assert "3 callback error(s)" in (health["sync-broker"].reason or "")
    finally:
        pub.stop()
        ob.close()
        sub.close()
        b.stop()


def test_exception_in_the_command_handler_does_not_stop_delivery(tmp_path: Path) -> None:
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)

    def boom(name: str, payload: bytes) -> None:
        raise RuntimeError("handler bug (injected)")

    ob = Outbox(tmp_path / "outbox.db", "cam1", uuid7())
    pub = Publisher(cfg(b.port), "cam1", ob, on_command=boom)
    try:
        pub.start()
        assert pub.connected.wait(10)
        deadline = time.monotonic() + 10
        while pub.callback_errors == 0 and time.monotonic() < deadline:
            # again until it lands: `connected` is set before the broker's SUBACK
            sub.client.publish("edgewise/v1/cam1/cmd/snapshot", b'{"v":1,"id":"1"}', 1)
            time.sleep(0.3)
        assert pub.callback_errors >= 1 and "handler bug" in (pub.last_callback_error or "")
        ob.append(make_events(5))
        assert pub.wait_drained(10)  # reconnected and still delivering
        assert pub.connects >= 2
    finally:
        pub.stop()
        ob.close()
        sub.close()
        b.stop()


def test_health_says_broker_unreachable_after_the_threshold_but_not_fatal(tmp_path: Path) -> None:
    port = free_port()
    with MqttSink(cfg(port, broker_unreachable_s=0.5), "cam1", tmp_path) as sink:
        time.sleep(1.0)
        health = {h.name: h for h in sink.health()}
        assert set(health) == {
            "sync-net",
            "sync-send",
            "sync-broker",
            "sync-outbox",
            "sync-snapshots",
        }
        br = health["sync-broker"]
        assert not br.ok and not br.fatal and "broker unreachable for" in (br.reason or "")
        assert health["sync-net"].ok and health["sync-outbox"].ok
        b = Broker(tmp_path / "broker", port).start()
        try:
            assert sink.publisher.connected.wait(10)
            assert {h.name: h for h in sink.health()}["sync-broker"].ok
        finally:
            b.stop()


class Replies:
    def __init__(self, port: int) -> None:
        self.got: list[bytes] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311,
                             client_id="replies", clean_session=False)  # fmt: skip
        ready = threading.Event()
        self.c.on_message = lambda c, u, m: self.got.append(bytes(m.payload))
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("edgewise/v1/cam1/cmd/+/reply", 1)
        self.c.loop_start()
        assert ready.wait(5)

    def wait(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.got) >= n

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_reply_queued_while_disconnected_is_delivered_after_reconnect(tmp_path: Path) -> None:
    """issue 10 case 16: a `config` reply sent while the publisher reconnects was dropped
    with "reply not sent, the broker is not connected"."""
    b = Broker(tmp_path / "broker", free_port(), persistence=True).start()
    Replies(b.port).close()  # a persistent session: the broker queues replies for it
    ob = Outbox(tmp_path / "outbox.db", "cam1", uuid7())
    pub = Publisher(cfg(b.port), "cam1", ob)
    try:
        pub.start()
        assert pub.connected.wait(10)
        b.stop()
        deadline = time.monotonic() + 10
        while pub.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pub.connected.is_set()
        topic = "edgewise/v1/cam1/cmd/config/reply"
        assert pub.publish_reply(topic, b'{"v":1,"id":"r1","command":"config","ok":true}')
        b.start()
        rep = Replies(b.port)
        assert rep.wait(1), "the reply queued during the outage never arrived"
        assert b'"r1"' in rep.got[0]
        rep.close()
    finally:
        pub.stop()
        ob.close()
        b.stop()


def test_sink_health_is_red_while_outbox_appends_fail(tmp_path: Path) -> None:
    """issue 10 case 5: a failed append lost the frame's events with one log line."""
    with MqttSink(cfg(free_port()), "cam1", tmp_path) as sink:
        sink.emit_many(make_events(2))
        pages = sink.outbox._db.execute("PRAGMA page_count").fetchone()[0]
        sink.outbox._db.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL from now on
        with pytest.raises(OutboxError, match=r"outbox\.db"):
            for _ in range(50):
                sink.emit_many(make_events(20))
        health = {h.name: h for h in sink.health()}["sync-outbox"]
        assert not health.ok and "appends failing" in (health.reason or "")
        st = sink.outbox.stats()
        assert st.append_failures == 1 and st.events_lost == 20
