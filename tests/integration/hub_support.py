"""Helpers for the hub tests: a private mosquitto, a PostgreSQL database per run,
v1 batches built from the schema models, and `edge-hub serve` subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.schema import EventBatchV1, EventV1, ModelRefV1, StatusV1, TelemetryV1
from edge.compat import UTC
from edge.demo.broker import free_port
from tests.support.mosquitto import start_broker

__all__ = ["free_port"]

PG_ADMIN = os.environ.get("EDGEWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def mosquitto(tmp: Path) -> Iterator[int]:
    """A private broker on a free port; yields the port."""
    with start_broker(tmp / "mosquitto", "max_inflight_messages 1000") as broker:
        yield broker.port


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped after; skips when none is reachable."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'edgewise[hub]')")
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.Error as e:
        msg = f"no PostgreSQL at {PG_ADMIN} ({str(e).strip()[:80]}); set EDGEWISE_TEST_PG"
        if os.environ.get("CI"):  # the CI machines run PostgreSQL: there it must not skip
            pytest.fail(msg)
        pytest.skip(msg)
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def now() -> datetime:
    return datetime.now(UTC)


def make_batch(
    device: str, boot: str, seqs: Sequence[int], label: str = "face", kind: str = "vision"
) -> EventBatchV1:
    t = now()
    events = [
        EventV1(
            id=str(uuid.uuid4()), device_id=device, boot_id=boot, seq=s, stream="cam0",
            kind=kind, label=label, score=0.9, phase="start", started_at=t, ts=t,
            box=[0.1, 0.2, 0.3, 0.4] if kind == "vision" else None, track_id=s,
            model=ModelRefV1(name="blazeface-short", version="1", sha256="abcdef12"),
            latency_ms=12.5,
        )
        for s in seqs
    ]  # fmt: skip
    return EventBatchV1(device_id=device, boot_id=boot, events=events)


def make_telemetry(
    device: str, boot: str, fps: float, inf_ms: float, *, crossed: int | None = None
) -> TelemetryV1:
    """``crossed``: the stream has a zone ``driveway`` (one person, ``crossed`` % 3 cars in
    it) and a line ``gate`` crossed ``crossed`` times in, once out."""
    cam: dict[str, object] = {"fps_in": fps, "fps_processed": fps, "dropped": 0}
    if crossed is not None:
        cam["zones"] = {"driveway": {"person": 1, "car": crossed % 3}, "porch": {}}
        cam["lines"] = {"gate": {"in": crossed, "out": 1}}
    return TelemetryV1.model_validate(
        {"device_id": device, "boot_id": boot, "ts": now().isoformat(), "uptime_s": 5.0,
         "streams": {"cam0": cam},
         "detectors": {"blazeface-short": {"inference_ms": inf_ms, "calls": 10}},
         "outbox": {"depth": 0, "oldest_age_s": 0.0, "dropped": 0}, "reconnects": 0}
    )  # fmt: skip


def status(device: str, state: str, boot: str | None = None) -> bytes:
    return (
        StatusV1(device_id=device, state=state, boot_id=boot, ts=now()).model_dump_json().encode()
    )


class Publisher:
    """A plain paho v5 client that publishes at QoS 1 and waits for every PUBACK."""

    def __init__(
        self, port: int, client_id: str | None = None, auth: tuple[str, str] | None = None
    ) -> None:
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if auth is not None:
            self.c.username_pw_set(*auth)
        self.c.max_inflight_messages_set(100)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def publish(self, topic: str, payloads: Sequence[bytes], retain: bool = False) -> None:
        infos = [self.c.publish(topic, p, qos=1, retain=retain) for p in payloads]
        for i in infos:
            i.wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class HubProc:
    """``edge-hub serve`` as a subprocess; ``get`` reads its JSON API.

    ``wait=False`` returns at once (a hub expected to fail: ``exit_code``); ``http_port``
    fixes the port (the default client id is derived from it)."""

    def __init__(
        self, db: str, mqtt_port: int, prefix: str, log: Path, *extra: str,
        env: dict[str, str] | None = None, http_port: int | None = None, wait: bool = True,
    ) -> None:  # fmt: skip
        self.log = log
        for attempt in range(3):
            self.port = http_port or free_port()
            exe = Path(sys.executable).with_name("edge-hub")
            self.p = subprocess.Popen(
                [str(exe), "serve", "--db", db, "--mqtt-port", str(mqtt_port), "--prefix", prefix,
                 "--http-port", str(self.port), *extra],
                stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env,
            )  # fmt: skip
            if not wait or self._came_up():
                return
            if http_port is None and attempt < 2 and "address already in use" in log.read_text():
                continue  # another test's server took the port between free_port and bind
            raise RuntimeError(f"edge-hub did not come up: {log.read_text()[-2000:]}")

    def _came_up(self) -> bool:
        t0 = time.monotonic()
        while True:
            try:
                if self.health()[1]["mqtt_connected"]:
                    return True
            except (OSError, TypeError, KeyError):
                pass
            if self.p.poll() is not None:
                return False
            if time.monotonic() - t0 > 20:
                self.stop()
                return False
            time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(self.url(path))
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def health(self) -> tuple[int, Any]:
        return http(self.url("/healthz"))

    def exit_code(self, timeout: float = 30.0) -> int:
        """Wait for the hub to exit on its own; its exit status."""
        return self.p.wait(timeout)

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def wait_for(pred: Any, timeout: float = 15.0, every: float = 0.1) -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Status and JSON body, for error answers too (urlopen raises on 4xx/5xx)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class AckListener:
    """Subscribes to ``<prefix>/+/ack`` (the device's view) and collects HubAckV1 payloads."""

    def __init__(self, port: int, prefix: str) -> None:
        self.acks: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"acks-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.c.on_message = lambda _c, _u, m: self.acks.append(json.loads(m.payload))
        self.c.on_subscribe = lambda *_a: self._ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(f"{prefix}/+/ack", qos=1)
        self.c.loop_start()
        assert self._ready.wait(10), "no SUBACK for the ack listener"

    def acked(self, device: str) -> set[int]:
        return {
            s
            for a in list(self.acks)
            if a["device_id"] == device
            for lo, hi in a["ranges"]
            for s in range(lo, hi + 1)
        }

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium``; ``./dev test`` and .ci/run install it)."""
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def launch_chromium(pw: Any) -> Any:
    """Headless Chromium through Playwright, offline: nothing but the page's own server."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
