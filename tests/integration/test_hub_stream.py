"""The SSE feed (new events, Last-Event-ID resume) and commands with their replies."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.schema import CommandReplyV1, CommandV1, topic

from .hub_support import HubProc, Publisher, make_batch, mosquitto, wait_for

pytestmark = pytest.mark.slow


def sse(url: str, last_id: int | None = None) -> Iterator[tuple[int, dict[str, object]]]:
    req = urllib.request.Request(url)
    if last_id is not None:
        req.add_header("Last-Event-ID", str(last_id))
    with urllib.request.urlopen(req, timeout=10) as r:
        ident = None
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("data: ") and ident is not None:
                yield ident, json.loads(line[6:])


def test_stream_delivers_new_events_and_resumes(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            stream = sse(hub.url("/api/stream?device=cam-s"))
            time.sleep(0.3)
            b1 = make_batch("cam-s", boot, [0, 1, 2])
            t0 = time.monotonic()
            pub.publish(topic(prefix, "cam-s", "events"), [b1.model_dump_json().encode()])
            got = [next(stream) for _ in range(3)]
            assert time.monotonic() - t0 < 2.0
            assert [e["id"] for _, e in got] == [e.id for e in b1.events]
            last = got[1][0]  # the client saw two, then dropped
            b2 = make_batch("cam-s", boot, [3, 4])
            pub.publish(topic(prefix, "cam-s", "events"), [b2.model_dump_json().encode()])
            resumed = sse(hub.url("/api/stream?device=cam-s"), last_id=last)
            ids = [next(resumed)[1]["id"] for _ in range(3)]
            assert ids == [b1.events[2].id] + [e.id for e in b2.events]
        finally:
            pub.close()
            hub.stop()


def test_command_is_published_and_its_reply_recorded(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log")
        dev = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        received: list[CommandV1] = []

        def on_message(c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            cmd = CommandV1.model_validate_json(msg.payload)
            received.append(cmd)
            reply = CommandReplyV1(id=cmd.id, command="config", ok=True, message="applied")
            c.publish(msg.topic + "/reply", reply.model_dump_json(), qos=1)

        dev.on_message = on_message
        dev.connect("127.0.0.1", port)
        dev.subscribe(topic(prefix, "cam-c", "cmd", "config"), qos=1)
        dev.loop_start()
        try:
            time.sleep(0.3)
            req = urllib.request.Request(
                hub.url("/api/devices/cam-c/commands"),
                data=json.dumps({"name": "config", "args": {"threshold": 0.7}}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 202
                body = json.loads(r.read())
            assert body["topic"] == f"{prefix}/cam-c/cmd/config"
            cmds = wait_for(lambda: hub.get("/api/devices/cam-c/commands")["commands"][0]["ok"])
            assert cmds is True
            assert [(c.id, c.args) for c in received] == [(body["id"], {"threshold": 0.7})]
            (c,) = hub.get("/api/devices/cam-c/commands")["commands"]
            assert c["reply"]["message"] == "applied"
        finally:
            dev.loop_stop()
            dev.disconnect()
            hub.stop()
