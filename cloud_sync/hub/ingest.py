"""MQTT ingest: a paho client feeding a bounded queue, drained by one database writer.

Events, telemetry and command replies come through an MQTT v5 shared
subscription (``$share/<group>/…``) so several hub workers split them; status is
subscribed by every worker without sharing, because brokers do not send retained
messages to shared subscriptions and the registry needs them. Messages are
acknowledged (manual PUBACK) only after their transaction commits, so a hub
crash loses nothing the broker handed over. On an MQTT 3.1.1 broker the hub
subscribes without sharing and must run as a single worker.

This module is the MQTT side: connect, subscribe, reconnect backoff, the hub-online
announcement and the queue. The writer that drains it (batches into the store, the
quarantine, the broker and hub acknowledgements) is ``cloud_sync.hub.writer``.
"""

from __future__ import annotations

import logging
import random
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
from cloud_sync.hub.db.quarantine import QUARANTINE_PAYLOAD_MAX
from cloud_sync.hub.errors import HubError
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.ratelimit import DeviceRateLimit
from cloud_sync.hub.validate import DEFAULT_MAX_PAYLOAD, Rejected
from cloud_sync.hub.writer import Item, Writer
from cloud_sync.schema import HubOnlineV1, hub_online_topic, parse_topic, topic
from edge.supervise import ComponentHealth, GuardedThread

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
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 5.0
    """Reconnect backoff: 0.2 s doubling to 5 s, each wait jittered down by up to half
    (workers that lost one broker do not all come back in the same instant). A hub
    back 5 s after the broker is the worst case; paho's default 1..30 s meant 15 s."""
    db_retry_max_s: float = 10.0
    writer_max_restarts: int = 5
    """Writer crashes (a bug, not bad data: that is quarantined) restarted within 5 min;
    one more and the writer is fatal: health says so and ``edge-hub serve`` exits 1."""


def subscriptions(prefix: str, group: str, shared: bool) -> list[str]:
    """The topic filters one worker subscribes to (QoS 1 each)."""
    share = f"$share/{group}/" if shared else ""
    # Never ``+/#`` or ``+/+``: the hub's own ``<device>/ack`` and the ``cmd/<name>``
    # requests it publishes must not come back to it.
    return [
        f"{prefix}/+/status",
        f"{share}{prefix}/+/events",
        f"{share}{prefix}/+/telemetry",
        f"{share}{prefix}/+/cmd/+/reply",
    ]


class Ingest(Writer):
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
        self._writer = GuardedThread(
            "hub-writer",
            self._write_loop,
            stop=self._stop,
            max_restarts=cfg.writer_max_restarts,
            stall_after_s=120.0,
        )
        self._client: mqtt.Client | None = None
        self._sub_mid: int | None = None
        self._v5 = cfg.protocol != "3.1.1"
        self._connected = threading.Event()
        self._connack: Any = None
        self._attempt = 0
        self._down_since: float | None = time.monotonic()
        self._mqtt_reason: str | None = "not connected yet"
        self._db_error: str | None = None
        self._db_error_since = 0.0
        self._last_prune = 0.0

    # --- health ----------------------------------------------------------------------------
    def health(self) -> list[ComponentHealth]:
        """The writer thread, the broker connection and the database, as the writer sees it."""
        out = [self._writer.health()]
        where = f"{self.cfg.host}:{self.cfg.port}"
        if self.metrics.mqtt_connected:
            out.append(ComponentHealth("mqtt", True))
        else:
            down = time.monotonic() - (self._down_since or time.monotonic())
            out.append(
                ComponentHealth(
                    "mqtt", False, f"broker {where} unreachable for {down:.0f} s"
                    f" ({self._mqtt_reason or 'reconnecting'})",
                )
            )  # fmt: skip
        err = self._db_error
        if err is None:
            out.append(ComponentHealth("database", True))
        else:
            t = time.monotonic() - self._db_error_since
            out.append(ComponentHealth("database", False, f"writes failing for {t:.0f} s: {err}"))
        return out

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
        self._next_delay(c, reset=True)
        c.max_inflight_messages_set(100)
        # acks and commands published while disconnected wait in paho, bounded: past this a
        # publish fails (counted) and the device simply resends its batch later
        c.max_queued_messages_set(10_000)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    def _next_delay(self, c: mqtt.Client, reset: bool = False) -> float:
        """Set paho's next reconnect wait: min doubling to max, jittered; returns it."""
        if reset:
            self._attempt = 0
        base = min(self.cfg.reconnect_min_s * 2**self._attempt, self.cfg.reconnect_max_s)
        self._attempt = min(self._attempt + 1, 30)
        delay = base * random.uniform(0.5, 1.0)  # noqa: S311  jitter, not a secret
        c.reconnect_delay_set(delay, delay)  # floats work in paho
        return float(delay)

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

    def _on_connect(self, c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        self._connack = rc
        where = f"{self.cfg.host}:{self.cfg.port}"
        if rc.is_failure:
            self._mqtt_reason = f"refused: {rc}"
            log.warning("broker %s refused the connection: %s", where, rc)
            self._connected.set()
            return
        shared = self._v5
        # Subscribe on EVERY connect, session present or not: mosquitto restores a persistent
        # session after its own restart but not the session's $share subscriptions, so a
        # worker trusting the CONNACK session-present flag would get nothing more.
        _rc, self._sub_mid = c.subscribe(
            [(t, 1) for t in subscriptions(self.cfg.prefix, self.cfg.group, shared)]
        )
        self._next_delay(c, reset=True)
        self._down_since = None
        self._mqtt_reason = None
        self.metrics.mqtt_connected = True
        self.metrics.mqtt_shared = shared
        present = bool(getattr(flags, "session_present", False))
        if shared:
            log.info(
                "connected to %s (MQTT 5, session present: %s), shared subscription group %r",
                where, present, self.cfg.group,
            )  # fmt: skip
        else:
            log.warning(
                "connected to %s with MQTT 3.1.1: no shared subscriptions, so run a single"
                " hub worker on this broker",
                where,
            )  # fmt: skip
        self._connected.set()

    def _on_subscribe(self, c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        """Once the broker has the subscriptions, say so to the devices (HubOnlineV1): what
        a restarted broker PUBACK'd before this moment may have reached nobody."""
        if mid != self._sub_mid:
            return
        failed = [str(r) for r in codes if getattr(r, "is_failure", False)]
        if failed:
            self._mqtt_reason = f"subscription refused: {', '.join(failed)}"
            log.error("broker refused the hub's subscriptions (%s); check its ACL", failed)
            return
        msg = HubOnlineV1(hub=self.client_id[:128], ts=datetime.now(UTC))
        c.publish(hub_online_topic(self.cfg.prefix), msg.model_dump_json().encode(), qos=1)
        with self.metrics.lock:
            self.metrics.hub_online_sent += 1

    def _went_down(self, why: str) -> None:
        self.metrics.mqtt_connected = False
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._mqtt_reason = why

    def _on_connect_fail(self, c: mqtt.Client, _u: Any) -> None:
        self._went_down("connection refused or unreachable")
        if not self._stop.is_set():
            delay = self._next_delay(c)
            log.warning(
                "cannot reach the broker %s:%d; reconnecting in %.1f s",
                self.cfg.host, self.cfg.port, delay,
            )  # fmt: skip

    def _on_disconnect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._went_down(f"lost: {rc}")
        if not self._stop.is_set():
            delay = self._next_delay(c)
            log.warning(
                "lost the broker %s:%d (%s); reconnecting in %.1f s",
                self.cfg.host, self.cfg.port, rc, delay,
            )  # fmt: skip

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs in paho's thread: no parsing here, only the size cap and the queue.
        payload = msg.payload
        size = len(payload)
        if size > self.cfg.max_payload:  # quarantined (its head) by the writer
            item = Item(msg.mid, msg.qos, msg.topic, bytes(payload[:QUARANTINE_PAYLOAD_MAX]),
                        size, too_large=True)  # fmt: skip
            self.queue.put(item, len(item.payload) + 200)
            return
        parsed = parse_topic(self.cfg.prefix, msg.topic)
        if parsed is not None and not self.limit.allow(parsed[0], size):
            # Acknowledged to the broker but NOT hub-acked: the device keeps the batch and
            # sends it again later, when it is under its rate (no flood into the quarantine).
            self._reject(Rejected("rate_limited", msg.topic, f"device {parsed[0]} over its rate"))
            self._ack(msg.mid, msg.qos)
            return
        self.queue.put(Item(msg.mid, msg.qos, msg.topic, bytes(payload), size), size + 200)

    def start(self, wait_s: float = 5.0) -> None:
        """Connect (falling back to 3.1.1 when ``protocol`` is auto) and start the writer."""
        self.store.migrate()
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

    def publish_command(self, t: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish a command request at QoS 1 and wait for the broker's PUBACK.

        The topic is checked here, at the producer: a broker disconnects a client that
        publishes a malformed topic, and paho would resend it on every reconnect."""
        parsed = parse_topic(self.cfg.prefix, t)
        if parsed is None or parsed[1] != "cmd" or parsed[2] is None:
            raise HubError(f"{t!r}: not a command topic under {self.cfg.prefix!r}")
        try:
            if topic(self.cfg.prefix, parsed[0], "cmd", parsed[2]) != t:
                raise ValueError("not in canonical form")
        except ValueError as e:
            raise HubError(f"{t!r}: refused before publishing ({e})") from None
        self.publish(t, payload, timeout)

    def publish(self, t: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        c = self._client
        if c is None or not c.is_connected():
            raise HubError(f"not connected to the broker {self.cfg.host}:{self.cfg.port}")
        if "\x00" in t or "+" in t or "#" in t or len(t.encode()) > 65535:
            raise HubError(f"{t!r}: not a topic a broker accepts")
        info = c.publish(t, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise HubError(f"broker {self.cfg.host}:{self.cfg.port} did not acknowledge {t}")

    def stop(self) -> None:
        self._stop.set()
        self._writer.join(10)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        self.metrics.mqtt_connected = False
