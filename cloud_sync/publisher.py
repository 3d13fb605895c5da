"""The MQTT publisher: moves committed events from the outbox to the broker.

Two threads, both ``GuardedThread``s (a crash is logged, counted and restarted; an
exception inside a paho callback is caught, counted and turned into a reconnect, so
the network thread never dies with the outbox growing behind it).

The *network* thread owns the connection: it connects with a
capped, jittered backoff, runs paho's loop, and on any loss (socket error, a
non-zero CONNACK reason, a PUBACK timeout) throws the paho client away and
builds a fresh one, so paho's in-memory queue never resends behind our back.
The *sender* thread reads the outbox in ``seq`` order, publishes batches at
QoS 1 while fewer than ``inflight`` are unacknowledged, and on every new
connection starts again from the oldest row not yet PUBACK'd (replay).

Delivery (``sync.delivery``): with ``"hub"`` (the default) a PUBACK only marks a
batch's rows delivered; they are deleted when the hub's ``HubAckV1`` on
``<prefix>/<device>/ack`` says it stored them, and rows the broker took but the hub
never acknowledged are sent again after ``hub_ack_timeout_s`` (doubling per resend).
With ``"broker"`` a PUBACK deletes them (no edgewise hub behind the broker).

Snapshots (``cloud_sync.outbox.snapshots``) go out on ``<prefix>/<device>/snapshots`` at
QoS 1 only while no event is waiting to be sent or for its PUBACK (events first: they are
the promise, and small; and the broker has an event before its snapshot), at most
``SNAPSHOT_INFLIGHT`` at once; each is deleted on its PUBACK, and those not PUBACK'd are
sent again on the next connection (the hub keeps one per event and kind).

Companions (``Companion``: the Home Assistant announcer, ``cloud_sync.ha``) ride on the
same connection: on every accepted connection each subscribes to its topics and gets a
retained QoS 1 publish bound to that connection; messages on its topics go to it. A
companion that raises is logged and counted, and the connection stays up.

Batches linger up to ``batch_max_ms`` for companions only
while other batches are in flight, so a quiet device publishes at once.

MQTT forbids resending on a live connection, so a PUBACK timeout is treated as
a dead link: reconnect, then resend from the outbox.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from cloud_sync.mqtt_client import new_client, read_password, status_of
from cloud_sync.outbox import Outbox
from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.schema import HubAckV1, HubOnlineV1, StatusV1, hub_online_topic, topic
from cloud_sync.sender import Flight, Link, SenderLoop
from edge.config import SyncConfig
from edge.events import rfc3339
from edge.supervise import ComponentHealth, GuardedThread

__all__ = ["Companion", "Publisher", "status_of"]

log = logging.getLogger(__name__)

MAX_PENDING_REPLIES = 64
"""Command replies held while the broker is unreachable; beyond that the oldest goes."""

_F = TypeVar("_F", bound=Callable[..., None])


class Companion(Protocol):
    """Something else a device says over the publisher's connection (``cloud_sync.ha``).
    Called on the network thread: keep each call short and non-blocking."""

    def subscriptions(self) -> Sequence[str]:
        """Topic filters subscribed (QoS 1) on every accepted connection."""
        ...

    def connected(self, publish: Callable[[str, bytes], mqtt.MQTTMessageInfo]) -> None:
        """A new connection: ``publish(topic, payload)`` is retained QoS 1 on it."""
        ...

    def message(self, topic: str, payload: bytes) -> None:
        """A message on one of ``subscriptions()``."""
        ...


class Publisher(SenderLoop):
    """Publishes the outbox, birth/LWT status, telemetry and command replies."""

    def __init__(
        self,
        cfg: SyncConfig,
        device_id: str,
        outbox: Outbox,
        *,
        telemetry: Callable[[], bytes | None] | None = None,
        on_command: Callable[[str, bytes], None] | None = None,
        version: str | None = None,
        snapshots: SnapshotStore | None = None,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.cfg = cfg
        self.companions = list(companions)
        self.device_id = device_id
        self.outbox = outbox
        self.boot_id = outbox.boot_id
        self.hub_delivery = cfg.delivery == "hub"
        self._telemetry = telemetry
        self._on_command = on_command
        self._version = version
        self._password = read_password(cfg)
        self._status_topic = topic(cfg.prefix, device_id, "status")
        self._events_topic = topic(cfg.prefix, device_id, "events")
        self.snapshots = snapshots
        self._snapshots_topic = topic(cfg.prefix, device_id, "snapshots")
        self.published_snapshots = 0
        self._ack_topic = topic(cfg.prefix, device_id, "ack")
        self._hub_online_topic = hub_online_topic(cfg.prefix)
        self._hub_online = threading.Event()  # a hub (re)subscribed: resend what it lacks
        self._cmd_filter = f"{cfg.prefix}/{device_id}/cmd/+"
        self._stop = threading.Event()  # the network thread ends
        self._stopping = threading.Event()  # the sender ends
        self._connack: ReasonCode | None = None
        self._wake_at = 0.0  # monotonic time a lingering batch is due
        self._wake = threading.Event()
        self._reconnect_now = threading.Event()
        self._acks: queue.SimpleQueue[tuple[int, int, bool]] = queue.SimpleQueue()
        self._hub_acks: queue.SimpleQueue[list[tuple[int, int]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._link: Link | None = None  # set while a CONNACK-accepted connection is up
        self._gen = 0
        self._replies: OrderedDict[int, tuple[str, bytes]] = OrderedDict()  # until PUBACK
        self._reply_id = 0
        self._down_since: float | None = time.monotonic()  # None while connected
        self.connected = threading.Event()
        self.connects = 0
        self.published_batches = 0
        self.acked_events = 0  # deleted from the outbox (hub ack, or PUBACK in broker mode)
        self.hub_acks = 0
        self.resent_events = 0  # overdue hub acks: sent again
        self.callback_errors = 0
        self.last_callback_error: str | None = None
        self.replies_dropped = 0
        self.invalid_acks = 0
        self.on_ack: Callable[[list[Flight]], None] | None = None  # for benchmarks and tests
        self._net = GuardedThread("sync-net", self._net_main, stop=self._stop)
        self._send = GuardedThread("sync-send", self._send_main, stop=self._stopping,
                                   stall_after_s=60.0)  # fmt: skip
        outbox.add_listener(self._wake.set)
        if snapshots is not None:
            snapshots.add_listener(self._wake.set)

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def start(self) -> None:
        self._net.start()
        self._send.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained ``stopped`` status, wait for its PUBACK, disconnect cleanly."""
        self._stopping.set()
        self._wake.set()
        self._send.join(timeout)
        link = self._link
        if link is not None:
            try:
                info = link.client.publish(
                    self._status_topic, self._status("stopped"), 1, retain=True
                )
                deadline = time.monotonic() + timeout
                while not info.is_published() and time.monotonic() < deadline and self._link:
                    time.sleep(0.01)
                link.client.disconnect()
            except (ValueError, RuntimeError, ValidationError) as exc:
                log.warning("mqtt: could not publish the stopped status: %s", exc)
        self._stop.set()
        self._net.join(timeout)

    def publish_reply(self, topic_: str, payload: bytes) -> bool:
        """Queue a command reply for a QoS 1 publish; it is held (in memory, at most
        ``MAX_PENDING_REPLIES``) until its PUBACK, across reconnects. True when queued: a
        reply dropped because too many are pending is counted and logged. False once
        ``stop()`` has begun (the reply would die with this publisher)."""
        if self._stopping.is_set():
            return False
        with self._lock:
            self._reply_id += 1
            self._replies[self._reply_id] = (topic_, payload)
            while len(self._replies) > MAX_PENDING_REPLIES:
                self._replies.popitem(last=False)
                self.replies_dropped += 1
                log.warning("mqtt: too many command replies pending; dropped the oldest")
        self._wake.set()
        return True

    def add_companion(self, c: Companion) -> None:
        """Add a companion to a running publisher (a reload turned it on): it subscribes and
        announces on the live connection now, if there is one, and on every later one."""
        self.companions = [*self.companions, c]
        link = self._link
        if link is not None:
            self._companion_call(c, "connected", self._companion_subscribe, link.client, c)

    def wait_drained(self, timeout: float) -> bool:
        """True once every committed event has been acknowledged (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.stats().depth == 0:
                return True
            time.sleep(0.02)
        return self.outbox.stats().depth == 0

    def health(self) -> list[ComponentHealth]:
        out = [self._net.health(), self._send.health()]
        if self._stopping.is_set():
            return [*out, ComponentHealth("sync-broker", True, "stopped")]
        down = self._down_since
        gone = time.monotonic() - down if down is not None else 0.0
        if down is not None and gone > self.cfg.broker_unreachable_s:
            # not fatal: the outbox keeps everything and a restart would not bring it back
            out.append(ComponentHealth(
                "sync-broker", False,
                f"broker unreachable for {gone:.0f} s ({self.cfg.host}:{self.cfg.port})"
                + (f"; last callback error: {self.last_callback_error}"
                   if self.last_callback_error else ""),
                dependency=True,
            ))  # fmt: skip
        else:
            note = None
            if self.callback_errors:
                note = f"{self.callback_errors} callback error(s); last: {self.last_callback_error}"
            out.append(ComponentHealth("sync-broker", True, note))
        return out

    # --- payloads -----------------------------------------------------------------------------

    def _status(self, state: str) -> bytes:
        birth = state == "online"
        s = StatusV1.model_validate(
            {
                "device_id": self.device_id,
                "state": state,
                "boot_id": self.boot_id,
                "ts": rfc3339(time.time()),
                "version": self._version,
                "epoch": self.outbox.epoch if birth else None,
                "seq_start": self.outbox.seq_start if birth else None,
                "outbox_reset": self.outbox.outbox_reset and birth,
            }
        )
        return s.model_dump_json(exclude_none=True).encode()

    # --- the network thread -------------------------------------------------------------------

    def _guard(self, fn: _F) -> _F:
        """A paho callback that cannot kill the network thread: an exception is logged with
        its traceback, counted, and the connection is dropped and rebuilt."""

        def wrapped(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:
                self.callback_errors += 1
                self.last_callback_error = f"{fn.__name__}: {type(exc).__name__}: {exc}"
                log.error("mqtt: %s failed; reconnecting", fn.__name__, exc_info=exc)
                self._reconnect_now.set()

        return wrapped  # type: ignore[return-value]

    def _new_client(self, gen: int) -> mqtt.Client:
        client = new_client(self.cfg, self.device_id, gen, self._status_topic, self._password)
        client.on_connect = self._guard(self._on_connect)
        client.on_publish = self._guard(self._on_publish)
        client.on_message = self._guard(self._on_message)
        return client

    def _net_main(self) -> None:
        delay = self.cfg.reconnect_min_s
        while not self._stop.is_set():
            self._net.beat()
            self._gen += 1
            gen = self._gen
            accepted = False
            try:
                client = self._new_client(gen)
                accepted = self._run_connection(client, gen)
            finally:
                with self._lock:
                    self._link = None
                if self._down_since is None:
                    self._down_since = time.monotonic()
                self.connected.clear()
                self._wake.set()
            if self._stop.is_set():
                break
            if accepted:
                delay = self.cfg.reconnect_min_s
            wait = random.uniform(delay / 2, delay)  # equal jitter: spread a fleet's reconnects  # noqa: S311  jitter, not a secret
            log.info("mqtt: reconnecting to %s:%d in %.2f s", self.cfg.host, self.cfg.port, wait)
            self._stop.wait(wait)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _run_connection(self, client: mqtt.Client, gen: int) -> bool:
        """Connect and loop until the link is lost; True if a CONNACK accepted us."""
        v5 = self.cfg.protocol == "5"
        self._connack = None
        self._reconnect_now.clear()
        try:
            client.connect(
                self.cfg.host,
                self.cfg.port,
                self.cfg.keepalive_s,
                clean_start=True if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            )
        except (OSError, ssl.SSLError) as exc:
            log.warning("mqtt: cannot connect to %s:%d: %s", self.cfg.host, self.cfg.port, exc)
            return False
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        stop_at: float | None = None
        try:
            while True:
                self._net.beat()
                rc = client.loop(timeout=0.05)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    if not self._stopping.is_set():
                        log.warning("mqtt: connection lost (%s)", mqtt.error_string(rc))
                    break
                ack = self._connack
                if ack is None and time.monotonic() > deadline:
                    log.warning("mqtt: no CONNACK within %.1f s", self.cfg.connect_timeout_s)
                    break
                if (ack is not None and ack.is_failure) or self._reconnect_now.is_set():
                    break
                if self._stop.is_set():  # stop() queued 'stopped' and DISCONNECT: let them out
                    stop_at = stop_at or time.monotonic()
                    if self._link is None or time.monotonic() - stop_at > 2.0:
                        break
        finally:
            sock = client.socket()
            if sock is not None:
                sock.close()
        # accepted = the birth went out too: a connection whose on_connect failed backs off
        return self._link is not None

    # --- paho callbacks (network thread, each behind _guard) ----------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        gen: int,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self._connack = reason
        if reason.is_failure:
            log.error(
                "mqtt: broker %s:%d refused the connection: %s (check username/password/TLS)",
                self.cfg.host, self.cfg.port, reason,
            )  # fmt: skip
            return
        client.publish(self._status_topic, self._status("online"), 1, retain=True)
        if self.hub_delivery:
            client.subscribe(self._ack_topic, qos=1)
            client.subscribe(self._hub_online_topic, qos=1)
        if self._on_command is not None:
            client.subscribe(self._cmd_filter, qos=1)
        for c in self.companions:
            self._companion_call(c, "connected", self._companion_subscribe, client, c)
        self.connects += 1
        log.info(
            "mqtt: connected to %s:%d (connect #%d)", self.cfg.host, self.cfg.port, self.connects
        )
        with self._lock:
            self._link = Link(gen, client)
        self._down_since = None
        self.connected.set()
        self._wake.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        gen: int,
        mid: int,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self._acks.put((gen, mid, not reason.is_failure))
        self._wake.set()

    def _on_message(self, client: mqtt.Client, gen: int, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._ack_topic:
            self._take_hub_ack(bytes(msg.payload))
            return
        if msg.topic == self._hub_online_topic:
            self._take_hub_online(bytes(msg.payload))
            return
        for c in self.companions:
            if any(mqtt.topic_matches_sub(f, msg.topic) for f in c.subscriptions()):
                self._companion_call(c, "message", c.message, msg.topic, bytes(msg.payload))
                return
        if self._on_command is None or msg.topic.endswith("/reply"):
            return
        if not mqtt.topic_matches_sub(self._cmd_filter, msg.topic):
            return  # a subscription left from a companion's earlier config: not a command
        name = msg.topic.rsplit("/", 1)[-1]
        self._on_command(name, bytes(msg.payload))

    def _companion_subscribe(self, client: mqtt.Client, c: Companion) -> None:
        for f in c.subscriptions():
            client.subscribe(f, qos=1)
        c.connected(lambda t, p: client.publish(t, p, 1, retain=True))

    def _companion_call(self, c: Companion, what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a companion's bug must not take the events' link down
            self.callback_errors += 1
            self.last_callback_error = f"{type(c).__name__}.{what}: {type(exc).__name__}: {exc}"
            log.error("mqtt: %s.%s failed", type(c).__name__, what, exc_info=exc)

    def _take_hub_online(self, payload: bytes) -> None:
        try:
            HubOnlineV1.model_validate_json(payload)
        except ValidationError as exc:
            self.invalid_acks += 1
            log.error("mqtt: invalid hub announcement on %s: %s", self._hub_online_topic,
                      exc.errors(include_url=False)[:1])  # fmt: skip
            return
        self._hub_online.set()
        self._wake.set()

    def _take_hub_ack(self, payload: bytes) -> None:
        try:
            ack = HubAckV1.model_validate_json(payload)
        except ValidationError as exc:
            self.invalid_acks += 1
            if self.invalid_acks == 1 or self.invalid_acks % 100 == 0:
                log.error("mqtt: invalid hub ack on %s (%d so far): %s", self._ack_topic,
                          self.invalid_acks, exc.errors(include_url=False)[:1])  # fmt: skip
            return
        if ack.device_id != self.device_id:
            self.invalid_acks += 1
            log.error("mqtt: hub ack for %r on %s ignored", ack.device_id, self._ack_topic)
            return
        self._hub_acks.put([(a, b) for a, b in ack.ranges])
        self._wake.set()
