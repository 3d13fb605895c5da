"""MQTT ingest: a paho client feeding a bounded queue, drained by one database writer.

Events, telemetry and command replies come through an MQTT v5 shared
subscription (``$share/<group>/…``) so several hub workers split them; status is
subscribed by every worker without sharing, because brokers do not send retained
messages to shared subscriptions and the registry needs them. Messages are
acknowledged (manual PUBACK) only after their transaction commits, so a hub
crash loses nothing the broker handed over. On an MQTT 3.1.1 broker the hub
subscribes without sharing and must run as a single worker.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_sync.hub.bounded import BoundedQueue
from cloud_sync.hub.db import Store
from cloud_sync.hub.errors import HubError
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.ratelimit import DeviceRateLimit
from cloud_sync.hub.validate import DEFAULT_MAX_PAYLOAD, Rejected, Reply, decode
from cloud_sync.schema import EventBatchV1, StatusV1, TelemetryV1, parse_topic

log = logging.getLogger("edge_hub.ingest")

Protocol = Literal["auto", "5", "3.1.1"]


@dataclass(frozen=True)
class IngestConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "edgewise/v1"
    group: str = "edge-hub"
    client_id: str | None = None
    protocol: Protocol = "auto"
    username: str | None = None
    password: str | None = None
    max_payload: int = DEFAULT_MAX_PAYLOAD
    queue_items: int = 20_000
    queue_bytes: int = 64 * 1024 * 1024
    receive_maximum: int = 2000
    write_batch: int = 2000
    retention_days: float | None = None
    device_rate_bytes: float = 16 * 1024 * 1024
    device_burst_bytes: float = 64 * 1024 * 1024
    session_expiry_s: int = 7 * 24 * 3600
    """With a fixed ``client_id`` the broker keeps this worker's session (and queues its
    QoS 1 messages) while it is down, for this long: a hub restart loses nothing."""


def subscriptions(prefix: str, group: str, shared: bool) -> list[str]:
    """The topic filters one worker subscribes to (QoS 1 each)."""
    share = f"$share/{group}/" if shared else ""
    return [
        f"{prefix}/+/status",
        f"{share}{prefix}/+/events",
        f"{share}{prefix}/+/telemetry",
        f"{share}{prefix}/+/cmd/+/reply",
    ]


Item = tuple[int, int, str, bytes]  # mid, qos, topic, payload


class Ingest:
    """Owns the MQTT client and the writer thread; ``start``/``stop`` around a server."""

    def __init__(
        self,
        cfg: IngestConfig,
        store: Store,
        metrics: HubMetrics | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.metrics = metrics or HubMetrics()
        self.on_stored = on_stored
        self.limit = DeviceRateLimit(cfg.device_rate_bytes, cfg.device_burst_bytes)
        self.queue: BoundedQueue[Item] = BoundedQueue(cfg.queue_items, cfg.queue_bytes)
        self.client_id = cfg.client_id or f"edge-hub-{socket.gethostname()}-{id(self):x}"
        # A named worker keeps its broker session across restarts; an anonymous one cannot.
        self._persistent = cfg.client_id is not None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._v5 = cfg.protocol != "3.1.1"
        self._connected = threading.Event()
        self._connack: Any = None
        self._log_budget: dict[str, int] = {}
        self._last_prune = 0.0

    # --- MQTT ------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else not self._persistent,
            manual_ack=True,
        )
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self.cfg.password)
        c.reconnect_delay_set(1, 30)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def _connect(self, c: mqtt.Client) -> None:
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
            props.ReceiveMaximum = self.cfg.receive_maximum
            if self._persistent:
                props.SessionExpiryInterval = self.cfg.session_expiry_s
        c.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=30,
            clean_start=not self._persistent if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        c.loop_start()

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connack = rc
        if rc.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, rc)
            self._connected.set()
            return
        shared = self._v5
        c.subscribe([(t, 1) for t in subscriptions(self.cfg.prefix, self.cfg.group, shared)])
        self.metrics.mqtt_connected = True
        self.metrics.mqtt_shared = shared
        if shared:
            log.info(
                "connected to %s:%d (MQTT 5), shared subscription group %r",
                self.cfg.host, self.cfg.port, self.cfg.group,
            )  # fmt: skip
        else:
            log.warning(
                "connected to %s:%d with MQTT 3.1.1: no shared subscriptions, so run a single"
                " hub worker on this broker",
                self.cfg.host, self.cfg.port,
            )  # fmt: skip
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.metrics.mqtt_connected = False
        if not self._stop.is_set():
            log.warning("lost the broker (%s); reconnecting", rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs in paho's thread: no parsing here, only the size cap and the queue.
        payload = msg.payload
        if len(payload) > self.cfg.max_payload:
            self._reject(Rejected("too_large", msg.topic, f"{len(payload)} bytes"))
            self._ack(msg.mid, msg.qos)
            return
        parsed = parse_topic(self.cfg.prefix, msg.topic)
        if parsed is not None and not self.limit.allow(parsed[0], len(payload)):
            self._reject(Rejected("rate_limited", msg.topic, f"device {parsed[0]} over its rate"))
            self._ack(msg.mid, msg.qos)
            return
        self.queue.put((msg.mid, msg.qos, msg.topic, bytes(payload)), len(payload) + 200)

    def _ack(self, mid: int, qos: int) -> None:
        if qos > 0 and self._client is not None:
            self._client.ack(mid, qos)

    def start(self, wait_s: float = 5.0) -> None:
        """Connect (falling back to 3.1.1 when ``protocol`` is auto) and start the writer."""
        self.store.migrate()
        self._writer = threading.Thread(target=self._write_loop, name="hub-writer", daemon=True)
        self._writer.start()
        self._client = self._make_client()
        self._connect(self._client)
        self._connected.wait(wait_s)
        rc = self._connack
        if (
            self.cfg.protocol == "auto"
            and rc is not None
            and rc.is_failure
            and rc.value in (1, 132)
        ):
            log.warning("broker refuses MQTT 5 (%s); falling back to MQTT 3.1.1", rc)
            self._client.loop_stop()
            self._client.disconnect()
            self._v5 = False
            self._connected.clear()
            self._client = self._make_client()
            self._connect(self._client)
            self._connected.wait(wait_s)

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        c = self._client
        if c is None or not c.is_connected():
            raise HubError(f"not connected to the broker {self.cfg.host}:{self.cfg.port}")
        info = c.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise HubError(f"broker {self.cfg.host}:{self.cfg.port} did not acknowledge {topic}")

    def stop(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(10)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        self.metrics.mqtt_connected = False

    # --- the writer ------------------------------------------------------------------------
    def _reject(self, r: Rejected) -> None:
        with self.metrics.lock:
            self.metrics.rejected[r.reason] += 1
            n = self.metrics.rejected[r.reason]
        if n <= 10 or n % 1000 == 0:
            log.warning("rejected (%s, %d so far) on %s: %s", r.reason, n, r.topic, r.detail)

    def _write_loop(self) -> None:
        while not self._stop.is_set() or len(self.queue):
            items = self.queue.get_many(self.cfg.write_batch, wait=0.2, linger=0.005)
            if items:
                self._write(items)
            self._maybe_prune()

    def _write(self, items: list[Item]) -> None:
        batches: list[EventBatchV1] = []
        statuses: list[StatusV1] = []
        telemetry: list[TelemetryV1] = []
        replies: list[Reply] = []
        kinds: dict[str, int] = {}
        for _mid, _qos, topic, payload in items:
            m = decode(self.cfg.prefix, topic, payload, self.cfg.max_payload)
            if isinstance(m, Rejected):
                self._reject(m)
                continue
            if isinstance(m, EventBatchV1):
                batches.append(m)
                kinds["events"] = kinds.get("events", 0) + 1
            elif isinstance(m, StatusV1):
                statuses.append(m)
                kinds["status"] = kinds.get("status", 0) + 1
            elif isinstance(m, TelemetryV1):
                telemetry.append(m)
                kinds["telemetry"] = kinds.get("telemetry", 0) + 1
            else:
                replies.append(m)
                kinds["reply"] = kinds.get("reply", 0) + 1
        delay = 0.2
        while True:
            t0 = time.perf_counter()
            try:
                res = self.store.write(batches, statuses, telemetry, replies)
                break
            except Exception as e:  # any database failure: keep the data, retry
                with self.metrics.lock:
                    self.metrics.write_errors += 1
                log.error("database write failed (%s); retrying in %.1f s", e, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
        with self.metrics.lock:
            self.metrics.write_seconds += time.perf_counter() - t0
            self.metrics.batches_written += 1
            self.metrics.events_stored += res.stored
            self.metrics.events_duplicate += res.duplicates
            self.metrics.received.update(kinds)
        for mid, qos, _t, _p in items:
            self._ack(mid, qos)
        if res.stored and self.on_stored is not None:
            self.on_stored()

    def _maybe_prune(self) -> None:
        days = self.cfg.retention_days
        now = time.monotonic()
        if days is None or now - self._last_prune < 600:
            return
        self._last_prune = now
        cutoff = datetime.now(UTC).timestamp() - days * 86400
        try:
            n = self.store.prune(cutoff)
        except Exception as e:  # best effort; the next round retries
            log.error("retention prune failed: %s", e)
            return
        if n:
            log.info("retention: deleted %d events older than %g days", n, days)
