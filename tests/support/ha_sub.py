"""A Home Assistant stand-in on a test broker: subscribes to the discovery prefix and the
devices' status topics, checks EVERY discovery config as it arrives against Home
Assistant's documented fields (``cloud_sync.ha.discovery.check_config``), and can send
Home Assistant's birth message."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_sync.ha.discovery import check_config, render_availability


class HomeAssistantSim:
    def __init__(self, port: int, prefix: str = "homeassistant") -> None:
        self.prefix = prefix
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retained
        self.problems: list[str] = []
        self.retained: dict[str, bytes] = {}  # what a newcomer would get now
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-ha-{port}-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{prefix}/#", 1), ("edgewise/v1/+/status", 1)]
        )
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("no SUBACK")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        with self.lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))
            if payload:
                self.retained[msg.topic] = payload
            else:
                self.retained.pop(msg.topic, None)
            if msg.topic.endswith("/config") and payload:
                self.problems += check_config(self.prefix, msg.topic, payload)

    def birth(self, payload: bytes = b"online") -> None:
        self.client.publish(f"{self.prefix}/status", payload, 1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    # --- views -------------------------------------------------------------------------------

    def configs(self) -> dict[str, dict[str, Any]]:
        """The configs now in place (retained, not removed), by topic."""
        with self.lock:
            return {t: json.loads(p) for t, p in self.retained.items() if t.endswith("/config")}

    def values(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def count(self, topic: str) -> int:
        return len(self.values(topic))

    def wait(self, pred: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.02)
        return pred()

    def state(self, config_topic: str) -> bytes | None:
        cfg = self.configs().get(config_topic)
        if cfg is None:
            return None
        with self.lock:
            return self.retained.get(cfg["state_topic"])

    def audit(self) -> list[str]:
        """Everything wrong with the configs in place, as a whole: the per-payload problems
        seen so far, unique_ids shared, state and availability topics that carry nothing,
        and availability that does not read the device's status as Home Assistant would."""
        out = list(self.problems)
        configs = self.configs()
        ids = [c.get("unique_id") for c in configs.values()]
        out += [f"unique_id {u!r} used twice" for u in {u for u in ids if ids.count(u) > 1}]
        with self.lock:
            retained = dict(self.retained)
        for t, c in configs.items():
            if c["state_topic"] not in retained:
                out.append(f"{t}: its state_topic {c['state_topic']} has no retained value")
            for a in c.get("availability", []):
                status = retained.get(a["topic"])
                if status is None:
                    out.append(f"{t}: availability topic {a['topic']} has no retained value")
                    continue
                seen = render_availability(a.get("value_template"), status)
                want = "online" if json.loads(status).get("state") == "online" else "offline"
                expected = (
                    a.get("payload_available", "online")
                    if want == "online"
                    else (a.get("payload_not_available", "offline"))
                )
                if seen != expected:
                    out.append(f"{t}: status {status!r} reads as {seen!r}, not {expected!r}")
        return out
