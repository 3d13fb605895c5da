"""A test subscriber (the hub's view): collects event batches by seq, statuses, telemetry.

With ``ack=True`` it also plays the hub's part in delivery: it answers every event batch
with a ``HubAckV1`` for its seqs on ``<prefix>/<device>/ack``, so a device with
``sync.delivery = "hub"`` deletes the rows (``hold_acks()`` pauses that)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import ValidationError

from cloud_sync.schema import EventBatchV1, TelemetryV1


class Subscriber:
    """MQTT 3.1.1, QoS 1, reconnecting; ``persistent`` keeps its session across broker restarts."""

    def __init__(
        self,
        port: int,
        *,
        persistent: bool = False,
        prefix: str = "edgewise/v1",
        auth: tuple[str, str] | None = None,
        ack: bool = False,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-hub-{port}-{time.monotonic_ns()}" if not persistent else "test-hub",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=not persistent,
        )
        self.prefix = prefix
        self.ack = ack
        self.acks_sent = 0
        self.lock = threading.Lock()
        self.ids: dict[int, set[str]] = defaultdict(set)  # seq -> event ids seen with it
        self.batches: list[EventBatchV1] = []
        self.statuses: list[dict[str, Any]] = []
        self.telemetry: list[TelemetryV1] = []
        self.invalid: list[tuple[str, bytes]] = []  # payloads that fail the v1 schema
        self.raw: list[tuple[str, bytes]] = []  # every message, as it came (topic, payload)
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        if auth:
            self.client.username_pw_set(*auth)
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work; int hint is too narrow
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("subscriber: no SUBACK")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.raw.append((msg.topic, bytes(msg.payload)))
        try:
            self._take(msg)
        except (ValidationError, ValueError):
            with self.lock:
                self.invalid.append((msg.topic, bytes(msg.payload)))

    def _take(self, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            if kind == "ack":
                return
            if kind == "events":
                b = EventBatchV1.model_validate_json(msg.payload)
                self.batches.append(b)
                for e in b.events:
                    self.ids[e.seq].add(e.id)
                if self.ack:
                    self._send_ack(b)
            elif kind == "status" and msg.payload:
                self.statuses.append(json.loads(msg.payload))
            elif kind == "telemetry":
                self.telemetry.append(TelemetryV1.model_validate_json(msg.payload))

    def _send_ack(self, b: EventBatchV1) -> None:
        ranges: list[list[int]] = []
        for seq in sorted(e.seq for e in b.events):
            if ranges and seq == ranges[-1][1] + 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        doc = {"v": 1, "device_id": b.device_id, "ranges": ranges}
        self.client.publish(f"{self.prefix}/{b.device_id}/ack", json.dumps(doc), 1)
        self.acks_sent += 1

    def send_ack(self, device_id: str, ranges: list[tuple[int, int]]) -> None:
        doc = {"v": 1, "device_id": device_id, "ranges": [list(r) for r in ranges]}
        self.client.publish(f"{self.prefix}/{device_id}/ack", json.dumps(doc), 1)

    def seqs(self) -> list[int]:
        with self.lock:
            return sorted(self.ids)

    def wait_seqs(self, expected: list[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seqs() == expected:
                return True
            time.sleep(0.05)
        return self.seqs() == expected

    def wait_status(self, state: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.statuses and self.statuses[-1]["state"] == state:
                    return self.statuses[-1]
            time.sleep(0.02)
        raise TimeoutError(f"status never became {state!r}; saw {self.statuses[-3:]}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained_status(port: int, device: str, prefix: str = "edgewise/v1") -> dict[str, Any] | None:
    """What a fresh subscriber reads from the retained status topic right now."""
    got: list[dict[str, Any]] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)

    def on_msg(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        got.append(json.loads(msg.payload))
        done.set()

    c.on_message = on_msg
    c.on_subscribe = lambda *a: threading.Timer(0.3, done.set).start()
    c.connect("127.0.0.1", port)
    c.subscribe(f"{prefix}/{device}/status", 1)
    c.loop_start()
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return got[0] if got else None
