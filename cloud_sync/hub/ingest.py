"""MQTT ingest: a paho client feeding a bounded queue, drained by one database writer.

Events, telemetry, command replies and snapshots (binary, ``cloud_sync.hub.snapshots``)
come through an MQTT v5 shared subscription (``$share/<group>/…``) so several hub
workers split them; status is subscribed by every worker without sharing, because
brokers do not send retained messages to shared subscriptions and the registry needs
them. Messages are acknowledged (manual PUBACK) only after their transaction commits, so a hub
crash loses nothing the broker handed over. On an MQTT 3.1.1 broker the hub
subscribes without sharing and must run as a single worker.

This module is the MQTT side: connect, subscribe, reconnect backoff, the hub-online
announcement and the queue. The writer that drains it (batches into the store, the
quarantine, the broker and hub acknowledgements) is ``cloud_sync.hub.writer``.
"""

from __future__ import annotations

import logging
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_sync.hub.bounded import BoundedQueue
from cloud_sync.hub.db import Store
from cloud_sync.hub.db.quarantine import QUARANTINE_PAYLOAD_MAX
from cloud_sync.hub.errors import HubError
from cloud_sync.hub.identity import worker_label
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.ratelimit import DeviceRateLimit
from cloud_sync.hub.snapshots.intake import SnapshotConfig, SnapshotIntake
from cloud_sync.hub.snapshots.validate import MAX_MESSAGE as MAX_SNAPSHOT_MESSAGE
from cloud_sync.hub.validate import DEFAULT_MAX_PAYLOAD, Rejected
from cloud_sync.hub.writer import Item, Writer
from cloud_sync.mqtt_auth import (
    HUB_TLS,
    TLSFiles,
    TLSNames,
    report_tls_errors,
    tls_context,
    tls_failure,
)
from cloud_sync.schema import HubOnlineV1, hub_online_topic, parse_topic, topic
from edge.compat import UTC
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
    tls: TLSFiles | None = None
    """TLS to the broker (``None``: plain TCP); with ``cert_file``/``key_file``, mutual TLS."""
    tls_names: TLSNames = HUB_TLS
    """How errors name the TLS settings (``edge-hub serve``'s flags)."""
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
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)
    """Where snapshots go, their retention and how long one waits for its event."""


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
        f"{share}{prefix}/+/snapshots",
    ]


def _is_login_refusal(rc: Any) -> bool:
    """CONNACK codes that mean "not you": MQTT 5 bad user name or password (134), not
    authorized (135), bad authentication method (140); MQTT 3.1.1: 4 and 5."""
    return int(getattr(rc, "value", rc)) in (134, 135, 140, 4, 5)


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
        self.snapshots = SnapshotIntake(cfg.snapshots, store, self.metrics)
        # A named worker keeps its broker session across restarts; an anonymous one cannot
        # (``edge-hub serve`` always names it: ``cloud_sync.hub.identity``).
        self.client_id = cfg.client_id or f"edge-hub-{secrets.token_hex(12)}"
        self.label = worker_label(self.client_id)
        self._persistent = cfg.client_id is not None
        # built (and its files read) here, so a bad file fails before any connection
        self._tls: ssl.SSLContext | None = None
        if cfg.tls is not None:
            self._tls = tls_context(cfg.tls, cfg.tls_names)
            report_tls_errors(self._tls, self._on_tls_error)
        self._tls_error: OSError | None = None
        self._refused: str | None = None
        """Why the broker refused this worker for a reason retrying does not fix (its
        certificate, our login): health says it; before a first connection it is fatal."""
        self._ever_connected = False
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
        self._attempt_answered = False  # this connection attempt got a CONNACK
        self._attempt = 0
        self._down_since: float | None = time.monotonic()
        self._mqtt_reason: str | None = "not connected yet"
        self._db_error: str | None = None
        self._db_error_since = 0.0
        self._last_prune = 0.0

    # --- health ----------------------------------------------------------------------------
    def health(self) -> list[ComponentHealth]:
        """The writer thread, snapshot storage, the broker connection and the database, as
        the writer sees it."""
        out = [self._writer.health(), self.snapshots.health()]
        where = f"{self.cfg.host}:{self.cfg.port}"
        if self.metrics.mqtt_connected:
            out.append(ComponentHealth("mqtt", True))
        elif self._refused is not None:
            # a setting to fix; fatal when the worker never got in (a deployment mistake:
            # exit 1 and say why), red but retrying when it worked before (a broker change)
            out.append(
                ComponentHealth(
                    "mqtt", False, f"broker {where}: {self._refused}",
                    fatal=not self._ever_connected,
                )
            )  # fmt: skip
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
        if self._tls is not None:
            c.tls_set_context(self._tls)
        self._next_delay(c, reset=True)
        c.max_inflight_messages_set(100)
        # acks and commands published while disconnected wait in paho, bounded: past this a
        # publish fails (counted) and the device simply resends its batch later
        c.max_queued_messages_set(10_000)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_pre_connect = self._on_pre_connect
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

    def _on_tls_error(self, exc: OSError) -> None:
        self._tls_error = exc  # read by the connect-fail / disconnect callback that follows

    def _take_tls_error(self) -> str | None:
        """The TLS error behind the failure being handled, as a reason (None: not TLS)."""
        exc, self._tls_error = self._tls_error, None
        if exc is None:
            return None
        why, permanent = tls_failure(exc, self.cfg.tls_names)
        if permanent:
            self._refused = why
            self._connected.set()  # no point waiting out start()'s wait
        return why

    def _on_connect(self, c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        self._connack = rc
        self._attempt_answered = True
        where = f"{self.cfg.host}:{self.cfg.port}"
        if rc.is_failure:
            self._mqtt_reason = f"refused: {rc}"
            if _is_login_refusal(rc):
                self._refused = (
                    f"refused the login ({rc}); check --mqtt-username and the password"
                    " (--mqtt-password-file or EDGE_HUB_MQTT_PASSWORD)"
                    + (", or the client certificate" if self._tls is not None else "")
                )
                log.error("broker %s %s", where, self._refused)
            else:
                log.warning("broker %s refused the connection: %s", where, rc)
            self._connected.set()
            return
        self._refused = None
        self._ever_connected = True
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
        # the label, not the client id: every device reads this, and the id is what a
        # client would need to take this worker's session
        msg = HubOnlineV1(hub=self.label, ts=datetime.now(UTC))
        c.publish(hub_online_topic(self.cfg.prefix), msg.model_dump_json().encode(), qos=1)
        with self.metrics.lock:
            self.metrics.hub_online_sent += 1

    def _went_down(self, why: str) -> None:
        self.metrics.mqtt_connected = False
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._mqtt_reason = why

    def _on_connect_fail(self, c: mqtt.Client, _u: Any) -> None:
        self._refused = None  # set again below if this failure, too, is a refusal
        tls = self._take_tls_error()
        self._went_down(tls or "connection refused or unreachable")
        if not self._stop.is_set():
            delay = self._next_delay(c)
            log.warning(
                "cannot reach the broker %s:%d%s; reconnecting in %.1f s",
                self.cfg.host, self.cfg.port, f": {tls}" if tls else "", delay,
            )  # fmt: skip

    def _on_pre_connect(self, _c: mqtt.Client, _u: Any) -> None:
        self._attempt_answered = False

    def _on_disconnect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        refused = self._attempt_answered and self._connack is not None and self._connack.is_failure
        if not refused:
            self._refused = None  # set again below if the TLS layer refused us
        why = self._take_tls_error()
        if why is None and not self._attempt_answered:
            why = (
                f"closed before the broker answered CONNECT ({rc}); a TLS port? then give"
                " --mqtt-tls-ca"
                if self._tls is None
                else f"closed before the broker answered CONNECT ({rc})"
            )
        self._went_down(why or f"lost: {rc}")
        if not self._stop.is_set():
            delay = self._next_delay(c)
            if not refused:  # a refused CONNACK was logged already, with what to check
                log.warning(
                    "lost the broker %s:%d (%s); reconnecting in %.1f s",
                    self.cfg.host, self.cfg.port, why or rc, delay,
                )  # fmt: skip

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs in paho's thread: no parsing here, only the size cap and the queue.
        payload = msg.payload
        size = len(payload)
        parsed = parse_topic(self.cfg.prefix, msg.topic)
        snapshot = parsed is not None and parsed[1] == "snapshots"
        if snapshot and size > MAX_SNAPSHOT_MESSAGE:
            # binary and past any snapshot's size: counted, never queued nor quarantined
            self.snapshots.refuse_too_large(msg.topic, size)
            self._ack(msg.mid, msg.qos)
            return
        if size > self.cfg.max_payload and not snapshot:  # quarantined (its head) by the writer
            item = Item(msg.mid, msg.qos, msg.topic, bytes(payload[:QUARANTINE_PAYLOAD_MAX]),
                        size, too_large=True)  # fmt: skip
            self.queue.put(item, len(item.payload) + 200)
            return
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
