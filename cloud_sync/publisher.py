"""The MQTT publisher: moves committed events from the outbox to the broker.

Two threads. The *network* thread owns the connection: it connects with a
capped, jittered backoff, runs paho's loop, and on any loss (socket error, a
non-zero CONNACK reason, a PUBACK timeout) throws the paho client away and
builds a fresh one, so paho's in-memory queue never resends behind our back.
The *sender* thread reads the outbox in ``seq`` order, publishes batches at
QoS 1 while fewer than ``inflight`` are unacknowledged, deletes a batch's rows
when its PUBACK arrives, and on every new connection starts again from the
oldest row (replay). Batches linger up to ``batch_max_ms`` for companions only
while other batches are in flight, so a quiet device publishes at once.

MQTT forbids resending on a live connection, so a PUBACK timeout is treated as
a dead link: reconnect, then resend from the outbox.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.outbox import Outbox, Row, batch_payload
from cloud_sync.schema import StatusV1, topic
from edge.config import SyncConfig
from edge.errors import ConfigError
from edge.events import rfc3339

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Flight:
    first: int
    last: int
    sent: float  # monotonic
    created: float  # epoch seconds the first row entered the outbox


@dataclass(frozen=True, slots=True)
class _Link:
    gen: int
    client: mqtt.Client


class Publisher:
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
    ) -> None:
        self.cfg = cfg
        self.device_id = device_id
        self.outbox = outbox
        self.boot_id = outbox.boot_id
        self._telemetry = telemetry
        self._on_command = on_command
        self._version = version
        self._password = _read_password(cfg)
        self._status_topic = topic(cfg.prefix, device_id, "status")
        self._events_topic = topic(cfg.prefix, device_id, "events")
        self._cmd_filter = f"{cfg.prefix}/{device_id}/cmd/+"
        self._stop = threading.Event()  # the network thread ends
        self._stopping = threading.Event()  # the sender ends
        self._connack: ReasonCode | None = None
        self._wake_at = 0.0  # monotonic time a lingering batch is due
        self._wake = threading.Event()
        self._reconnect_now = threading.Event()
        self._acks: queue.SimpleQueue[tuple[int, int, bool]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._link: _Link | None = None  # set while a CONNACK-accepted connection is up
        self._gen = 0
        self.connected = threading.Event()
        self.connects = 0
        self.published_batches = 0
        self.acked_events = 0
        self.on_ack: Callable[[list[_Flight]], None] | None = None  # for benchmarks and tests
        self._net = threading.Thread(target=self._net_main, name="sync-net", daemon=True)
        self._send = threading.Thread(target=self._send_main, name="sync-send", daemon=True)
        outbox.add_listener(self._wake.set)

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
            info = link.client.publish(self._status_topic, self._status("stopped"), 1, retain=True)
            deadline = time.monotonic() + timeout
            while not info.is_published() and time.monotonic() < deadline and self._link:
                time.sleep(0.01)
            link.client.disconnect()
        self._stop.set()
        self._net.join(timeout)

    def publish_reply(self, topic_: str, payload: bytes) -> bool:
        """QoS 1 publish of a command reply; False while disconnected."""
        link = self._link
        if link is None:
            return False
        return link.client.publish(topic_, payload, 1).rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def wait_drained(self, timeout: float) -> bool:
        """True once every committed event has been acknowledged (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.stats().depth == 0:
                return True
            time.sleep(0.02)
        return self.outbox.stats().depth == 0

    # --- payloads -----------------------------------------------------------------------------

    def _status(self, state: str) -> bytes:
        s = StatusV1.model_validate(
            {
                "device_id": self.device_id,
                "state": state,
                "boot_id": self.boot_id,
                "ts": rfc3339(time.time()),
                "version": self._version,
            }
        )
        return s.model_dump_json(exclude_none=True).encode()

    # --- the network thread -------------------------------------------------------------------

    def _new_client(self, gen: int) -> mqtt.Client:
        cfg = self.cfg
        v5 = cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or self.device_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            userdata=gen,
            clean_session=None if v5 else True,
        )
        # publishes from the sender thread are written by the network thread's loop()
        client.on_socket_register_write = lambda *_: None
        client.max_inflight_messages_set(cfg.inflight + 16)
        client.will_set(self._status_topic, _offline(self.device_id), qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password)
        if cfg.tls is not None:
            t = cfg.tls
            client.tls_set(
                ca_certs=str(t.ca_file) if t.ca_file else None,
                certfile=str(t.cert_file) if t.cert_file else None,
                keyfile=str(t.key_file) if t.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(t.insecure)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _net_main(self) -> None:
        delay = self.cfg.reconnect_min_s
        while not self._stop.is_set():
            self._gen += 1
            gen = self._gen
            client = self._new_client(gen)
            accepted = self._run_connection(client, gen)
            with self._lock:
                self._link = None
            self.connected.clear()
            self._wake.set()
            if self._stop.is_set():
                break
            if accepted:
                delay = self.cfg.reconnect_min_s
            wait = random.uniform(delay / 2, delay)  # equal jitter: spread a fleet's reconnects
            log.info("mqtt: reconnecting to %s:%d in %.2f s", self.cfg.host, self.cfg.port, wait)
            self._stop.wait(wait)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _run_connection(self, client: mqtt.Client, gen: int) -> bool:
        """Connect and loop until the link is lost; True if a CONNACK accepted us."""
        v5 = self.cfg.protocol == "5"
        self._connack = None
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
        self._reconnect_now.clear()
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        stop_at: float | None = None
        try:
            while True:
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
        return self._connack is not None and not self._connack.is_failure

    # --- paho callbacks (network thread) ------------------------------------------------------

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
        if self._on_command is not None:
            client.subscribe(self._cmd_filter, qos=1)
        self.connects += 1
        log.info(
            "mqtt: connected to %s:%d (connect #%d)", self.cfg.host, self.cfg.port, self.connects
        )
        with self._lock:
            self._link = _Link(gen, client)
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
        if self._on_command is None or msg.topic.endswith("/reply"):
            return
        name = msg.topic.rsplit("/", 1)[-1]
        self._on_command(name, bytes(msg.payload))

    # --- the sender thread --------------------------------------------------------------------

    def _send_main(self) -> None:
        inflight: dict[int, _Flight] = {}
        cursor = -1
        gen_seen = 0
        next_telemetry = time.monotonic()
        linger = self.cfg.batch_max_ms / 1000.0
        while not self._stopping.is_set():
            now = time.monotonic()
            self._wake.wait(min(0.25, max(0.0, self._wake_at - now)) if self._wake_at else 0.25)
            self._wake.clear()
            self._wake_at = 0.0
            link = self._link
            gen = link.gen if link else 0
            if gen != gen_seen:  # a new connection (or none): replay from the oldest row
                inflight.clear()
                cursor = -1
                gen_seen = gen
            self._settle(inflight, gen)
            if link is None:
                continue
            now = time.monotonic()
            if (
                inflight
                and now - min(f.sent for f in inflight.values()) > self.cfg.puback_timeout_s
            ):
                log.warning(
                    "mqtt: no PUBACK within %.1f s; reconnecting and resending from the outbox",
                    self.cfg.puback_timeout_s,
                )
                self._reconnect_now.set()
                continue
            cursor = self._fill(link, inflight, cursor, linger)
            if self._telemetry is not None and now >= next_telemetry:
                next_telemetry = now + self.cfg.telemetry_interval_s
                payload = self._telemetry()
                if payload is not None:
                    link.client.publish(
                        topic(self.cfg.prefix, self.device_id, "telemetry"), payload, 0
                    )
        self._settle(inflight, gen_seen)

    def _settle(self, inflight: dict[int, _Flight], gen: int) -> None:
        done: list[_Flight] = []
        while True:
            try:
                g, mid, ok = self._acks.get_nowait()
            except queue.Empty:
                break
            if g != gen or mid not in inflight:
                continue  # a status/reply PUBACK, or one from a connection already gone
            if not ok:
                log.error(
                    "mqtt: broker refused the batch (mid %d); check the ACL for this device", mid
                )
                continue  # stays in flight: the PUBACK timeout reconnects and resends
            done.append(inflight.pop(mid))
        if done:
            self.acked_events += self.outbox.ack([(f.first, f.last) for f in done])
            if self.on_ack is not None:
                self.on_ack(done)

    def _fill(self, link: _Link, inflight: dict[int, _Flight], cursor: int, linger: float) -> int:
        n_max = self.cfg.batch_max_events
        while len(inflight) < self.cfg.inflight:
            rows = self.outbox.read(cursor, n_max)
            if not rows:
                break
            boot = rows[0].boot_id
            same = [r for r in rows if r.boot_id == boot]
            split = len(same) < len(rows)
            if len(same) < n_max and not split and inflight:
                age = time.time() - same[0].created
                if age < linger:
                    self._wake_at = time.monotonic() + linger - age
                    break
            if not self._publish(link, inflight, same):
                break
            cursor = same[-1].seq
        return cursor

    def _publish(self, link: _Link, inflight: dict[int, _Flight], rows: list[Row]) -> bool:
        payload = batch_payload(self.device_id, rows[0].boot_id, rows)
        info = link.client.publish(self._events_topic, payload, 1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        inflight[info.mid] = _Flight(rows[0].seq, rows[-1].seq, time.monotonic(), rows[0].created)
        self.published_batches += 1
        return True


def _offline(device_id: str) -> bytes:
    return json.dumps({"v": 1, "device_id": device_id, "state": "offline"}).encode()


def _read_password(cfg: SyncConfig) -> str | None:
    if cfg.password_file is None:
        return None
    try:
        return cfg.password_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"sync.password_file: cannot read {cfg.password_file} ({exc.strerror})"
        ) from None


def status_of(payload: bytes) -> dict[str, Any]:
    """Decode a status payload (tests and tools)."""
    out: dict[str, Any] = json.loads(payload)
    return out
