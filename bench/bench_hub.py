"""Hub ingest rate (SQLite, PostgreSQL) through a real mosquitto vs the broker's delivery
rate to a bare subscriber, and feed latency (published → seen on /api/stream).

    .venv/bin/python bench/bench_hub.py [--batches 400] [--batch 100] [--pg URL]

One run; each rate is events/s from the first publish to the last event stored
(or received, for the bare subscriber); the ratio is against the bare subscriber.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cloud_sync.hub.db import open_store
from cloud_sync.hub.ingest import Ingest, IngestConfig
from cloud_sync.schema import topic
from tests.integration.hub_support import HubProc, make_batch, mosquitto


def client() -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(100)
    return c


def publish_all(port: int, t: str, payloads: list[bytes]) -> None:
    c = client()
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for p in payloads]
    for i in infos:
        i.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def payloads(n_batches: int, size: int, device: str) -> list[bytes]:
    boot = str(uuid.uuid4())
    return [
        make_batch(device, boot, range(i * size, (i + 1) * size)).model_dump_json().encode()
        for i in range(n_batches)
    ]


def bare_rate(port: int, prefix: str, data: list[bytes], size: int) -> float:
    got = threading.Event()
    count = [0]
    sub = client()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == len(data):
            got.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"{prefix}/+/events", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    publish_all(port, topic(prefix, "bench", "events"), data)
    got.wait(120)
    dt = time.perf_counter() - t0
    sub.disconnect()
    sub.loop_stop()
    return len(data) * size / dt


def hub_rate(port: int, prefix: str, db: str, data: list[bytes], size: int) -> float:
    store = open_store(db)
    ing = Ingest(IngestConfig(port=port, prefix=prefix, group=uuid.uuid4().hex[:6]), store)
    ing.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    publish_all(port, topic(prefix, "bench", "events"), data)
    total = len(data) * size
    while ing.metrics.events_stored < total:
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    ing.stop()
    store.close()
    return total / dt


def feed_latency(port: int, tmp: Path, n: int) -> tuple[float, float]:
    prefix = f"lat{uuid.uuid4().hex[:6]}"
    hub = HubProc(f"sqlite:///{tmp}/lat.db", port, prefix, tmp / "lat.log")
    sent: dict[str, float] = {}
    lat: list[float] = []
    done = threading.Event()

    def reader() -> None:
        with urllib.request.urlopen(hub.url("/api/stream"), timeout=30) as r:
            for raw in r:
                line = raw.decode()
                if line.startswith("data: "):
                    e = json.loads(line[6:])
                    lat.append(time.perf_counter() - sent[e["id"]])
                    if len(lat) == n:
                        done.set()
                        return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(0.5)
    c = client()
    c.connect("127.0.0.1", port)
    c.loop_start()
    boot = str(uuid.uuid4())
    for i in range(n):
        b = make_batch("lat", boot, [i])
        p = b.model_dump_json().encode()
        sent[b.events[0].id] = time.perf_counter()
        c.publish(topic(prefix, "lat", "events"), p, qos=1)
        time.sleep(0.02)
    done.wait(30)
    c.disconnect()
    c.loop_stop()
    hub.stop()
    ms = sorted(x * 1000 for x in lat)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--latency-events", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, mosquitto(Path(d)) as port:
        tmp = Path(d)
        data = payloads(a.batches, a.batch, "bench")
        n = a.batches * a.batch
        print(f"{n} events in {a.batches} batches of {a.batch}, QoS 1, mosquitto on loopback")
        base = bare_rate(port, "b0", data, a.batch)
        print(f"bare subscriber (broker delivery): {base:,.0f} events/s (baseline)")
        r = hub_rate(port, "b1", f"sqlite:///{tmp}/bench.db", data, a.batch)
        print(f"hub → SQLite:     {r:,.0f} events/s  ({r / base:.2f}× baseline)")
        try:
            import psycopg

            name = f"hub_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(a.pg, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
                try:
                    url = a.pg.rsplit("/", 1)[0] + "/" + name
                    r = hub_rate(port, "b2", url, data, a.batch)
                    print(f"hub → PostgreSQL: {r:,.0f} events/s  ({r / base:.2f}× baseline)")
                finally:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception as e:  # no PostgreSQL here: say so and go on
            print(f"hub → PostgreSQL: skipped ({e})")
        p50, p99 = feed_latency(port, tmp, a.latency_events)
        print(f"feed latency published → /api/stream (SQLite): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
