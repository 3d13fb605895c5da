"""Issue 10 case 15: one HTTP request knocked the hub off its broker. Command names and args
are validated before anything is published or stored; stream and query parameters are
bounded; errors are JSON."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.hub.db import open_store
from cloud_sync.schema import TelemetryV1
from tests.integration.hub_support import HubProc, http, make_telemetry, wait_for
from tests.support.mosquitto import start_broker

pytestmark = pytest.mark.slow


def _post(hub: HubProc, body: bytes, device: str = "cam-1") -> tuple[int, Any]:
    return http(hub.url(f"/api/devices/{device}/commands"), "POST", body)


def test_a_bad_command_name_is_a_400_and_the_broker_connection_survives(tmp_path: Path) -> None:
    """issue 10 case 15: {"name": "config\\n"} passed the name check, mosquitto disconnected the
    hub for the bad topic, paho resent it on every reconnect and every later POST was a 500."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    broker = start_broker(tmp_path / "mq")
    hub = HubProc(f"sqlite:///{tmp_path}/hub.db", broker.port, prefix, tmp_path / "hub.log")
    got: list[tuple[str, bytes]] = []
    ready = threading.Event()
    dev = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    dev.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    dev.on_subscribe = lambda *_a: ready.set()
    dev.connect("127.0.0.1", broker.port)
    dev.subscribe(f"{prefix}/cam-1/cmd/#", qos=1)
    dev.loop_start()
    try:
        assert ready.wait(10)
        for name in ("config\n", "con+fig", "config/x", "#", "Config", "c" * 40, "config\x00"):
            status, body = _post(hub, json.dumps({"name": name}).encode())
            assert status == 400 and body["error"].startswith("body.name"), (name, body)
        status, body = _post(hub, b'{"name": "config", "args": {"threshold": 0.5}}')
        assert status == 202, body
        wait_for(lambda: got, timeout=10)
        assert [t for t, _ in got] == [f"{prefix}/cam-1/cmd/config"]
        time.sleep(0.5)
        assert hub.health()[1]["mqtt_connected"] is True
        assert "lost the broker" not in hub.log.read_text()
        assert http(hub.url("/api/devices/cam-1/commands"))[0] == 200
    finally:
        dev.disconnect()
        dev.loop_stop()
        hub.stop()
        broker.stop()


def test_bad_args_bodies_and_parameters_are_400s_not_500s(tmp_path: Path) -> None:
    """issue 10 case 15, the smaller ones: args {"max_bytes": NaN} were accepted (202) and then
    GET .../commands was a 500 for ever; args nested 3000 deep gave a 500; Last-Event-ID 2**63
    cut the stream with an OverflowError; since=0 was taken as "not given"; 404s were HTML."""
    broker = start_broker(tmp_path / "mq")
    db = f"sqlite:///{tmp_path}/hub.db"
    store = open_store(db)
    store.migrate()
    old = json.loads(make_telemetry("cam-1", str(uuid.uuid4()), 5.0, 1.0).model_dump_json())
    old["ts"] = "2001-01-01T00:00:00Z"
    store.write([], telemetry=[TelemetryV1.model_validate(old)])
    store.close()
    hub = HubProc(db, broker.port, "p", tmp_path / "hub.log")
    try:
        status, body = _post(hub, b'{"name": "config", "args": {"max_bytes": NaN}}')
        assert status == 400, body
        status, body = _post(hub, b'{"name": "config", "args": {"max_bytes": 1e999}}')
        assert status == 400, body
        deep = b'{"name": "config", "args": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001
        status, body = _post(hub, deep)
        assert status == 400 and "deeper" in body["error"], body
        status, body = _post(hub, b'{"name": "config", "args": {"n": 18446744073709551616}}')
        assert status == 400, body
        assert http(hub.url("/api/devices/cam-1/commands")) == (200, {"commands": []})
        for last in (str(2**63), str(2**64), "-1"):
            status, body = http(hub.url("/api/stream"), headers={"Last-Event-ID": last})
            assert status == 400 and body["error"].startswith("Last-Event-ID"), (last, body)
        status, body = http(hub.url("/api/devices/cam-1/telemetry?since=0"))
        assert status == 200 and [t["fps"] for t in body["telemetry"]] == [5.0], body
        status, body = http(hub.url("/api/stats/labels?since=0"))
        assert status == 200
        status, body = http(hub.url("/api/nothing-here"))
        assert status == 404 and body == {"error": "Not Found"}
        status, body = http(hub.url("/api/devices"), "DELETE")
        assert status == 405 and "error" in body
        assert hub.health()[0] == 200
    finally:
        hub.stop()
        broker.stop()
