"""Sync throughput and latency against a private mosquitto on a free port (one run, side by side).

1. Throughput: events/s from ``emit_many`` (groups of 10, one fsync each, WAL +
   synchronous=FULL) through the outbox, the publisher (batches, QoS 1) and the
   broker to a subscriber that has counted every event; against a bare paho QoS 1
   loop publishing the same per-event JSON payloads one by one (paho's default
   in-flight 20) to the same broker, also counted at a subscriber.
2. Latency at 100 events/s: event creation to PUBACK, p50 / p99, against a bare
   paho QoS 1 publish-to-PUBACK at the same rate.

``.venv/bin/python bench/bench_sync.py [--events 20000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sync.outbox import Outbox
from cloud_sync.publisher import Publisher
from edge.config import SyncConfig
from edge.events import Event, ModelRef, uuid7
from tests.support.mosquitto import start_broker

MODEL = ModelRef("blazeface-short", "1", "0123456789abcdef")


def make_events(n: int) -> list[Event]:
    now = time.time()
    return [
        Event("cam0", "vision", "face", 0.91, "update", now, now, MODEL, track_id=i % 7,
              box=(0.1, 0.2, 0.3, 0.4), latency_ms=3.0)
        for i in range(n)
    ]  # fmt: skip


class Counter:
    """A subscriber counting events (batches count their events) until ``target``."""

    def __init__(self, port: int, topic: str, batched: bool) -> None:
        self.n = 0
        self.target = 0
        self.done = threading.Event()
        self.batched = batched
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
        self.c.on_message = self._on
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topic, 1)
        self.c.loop_start()
        subscribed.wait(5)

    def arm(self, target: int) -> None:
        self.n, self.target = 0, target
        self.done.clear()

    def _on(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        # a batch holds one '"seq":' per event; counting bytes keeps the GIL free for the sender
        self.n += m.payload.count(b'"seq":') if self.batched else 1
        if self.n >= self.target:
            self.done.set()

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def bare_client(port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid7()[-8:]}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def bare_throughput(port: int, payloads: list[bytes]) -> float:
    sub = Counter(port, "bench/bare", batched=False)
    sub.arm(len(payloads))
    c = bare_client(port)
    t0 = time.perf_counter()
    for p in payloads:
        c.publish("bench/bare", p, 1)
    sub.done.wait(120)
    dt = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    sub.close()
    return len(payloads) / dt


def sync_throughput(port: int, work: Path, events: list[Event], group: int, drain: bool) -> float:
    """``drain``: the events are committed before the publisher starts (outbox → subscriber);
    otherwise the clock includes ``emit_many`` of ``group`` events per transaction."""
    sub = Counter(port, "edgewise/v1/bench/events", batched=True)
    sub.arm(len(events))
    ob = Outbox(work / f"{uuid7()}.db", "bench", uuid7(), max_bytes=1 << 30)
    # delivery = "broker": this measures device -> broker (PUBACK deletes); no hub acks here
    pub = Publisher(
        SyncConfig(port=port, batch_max_events=200, inflight=20, delivery="broker"), "bench", ob
    )
    if drain:
        for i in range(0, len(events), group):
            ob.append(events[i : i + group])
    t0 = time.perf_counter()
    pub.start()
    if not drain:
        pub.connected.wait(5)
        t0 = time.perf_counter()
        for i in range(0, len(events), group):
            ob.append(events[i : i + group])
    sub.done.wait(120)
    dt = time.perf_counter() - t0
    pub.stop()
    ob.close()
    sub.close()
    return len(events) / dt


def validation_cost(work: Path, group: int, groups: int = 400) -> tuple[float, float]:
    """``append`` alone (no broker), events/s with and without the wire-schema check
    (``outbox.validate``), interleaved runs; (0, 0) for an outbox without the check."""
    try:
        import cloud_sync.outbox.store as store
    except ImportError:
        return 0.0, 0.0
    real = getattr(store, "check_group", None)
    if real is None:
        return 0.0, 0.0

    def run(check: bool) -> float:
        setattr(store, "check_group", real if check else (lambda bodies: []))  # noqa: B010
        ob = Outbox(work / f"{uuid7()}.db", "bench", uuid7(), max_bytes=1 << 30)
        groups_ = [make_events(group) for _ in range(groups)]
        t0 = time.perf_counter()
        for g in groups_:
            ob.append(g)
        dt = time.perf_counter() - t0
        ob.close()
        return groups * group / dt

    on, off = [], []
    for _ in range(3):
        off.append(run(False))
        on.append(run(True))
    setattr(store, "check_group", real)  # noqa: B010
    return statistics.median(on), statistics.median(off)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def sync_latency(port: int, work: Path, n: int, rate: float) -> list[float]:
    ob = Outbox(work / f"{uuid7()}.db", "bench", uuid7())
    pub = Publisher(SyncConfig(port=port, delivery="broker"), "bench", ob)
    created: dict[int, float] = {}
    lat: list[float] = []

    def on_ack(flights: list[Any]) -> None:
        now = time.perf_counter()
        for f in flights:
            lat.extend((now - created[s]) * 1000 for s in range(f.first, f.last + 1))

    pub.on_ack = on_ack
    pub.start()
    pub.connected.wait(5)
    for i in range(n):
        t = time.perf_counter()
        created[i] = t  # single producer on a fresh outbox: this event gets seq i
        ob.append(make_events(1))
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t)))
    pub.wait_drained(10)
    pub.stop()
    ob.close()
    return lat


def bare_latency(port: int, n: int, rate: float, payload: bytes) -> list[float]:
    c = bare_client(port)
    sent: dict[int, float] = {}
    lat: list[float] = []
    c.on_publish = lambda cl, u, mid, rc, p: lat.append((time.perf_counter() - sent[mid]) * 1000)
    for _ in range(n):
        t = time.perf_counter()
        info = c.publish("bench/bare-lat", payload, 1)
        sent[info.mid] = t
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t)))
    time.sleep(0.2)
    c.loop_stop()
    c.disconnect()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--group", type=int, default=10, help="events per emit_many (per fsync)")
    ap.add_argument("--latency-events", type=int, default=500)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = start_broker(work / "broker")
        try:
            events = make_events(a.events)
            payloads = [json.dumps(e.to_json(), separators=(",", ":")).encode() for e in events]
            modes = [("drain", a.group, True), ("emit", a.group, False), ("emit", 100, False)]
            bare: list[float] = []
            ours: dict[tuple[str, int, bool], list[float]] = {m: [] for m in modes}
            for _ in range(a.repeat):
                bare.append(bare_throughput(broker.port, payloads))
                for m in modes:
                    ours[m].append(sync_throughput(broker.port, work, events, m[1], m[2]))
            b = statistics.median(bare)
            size = statistics.median(len(p) for p in payloads)
            print(f"payload ~{size:.0f} B/event, {a.events} events, median of {a.repeat} runs")
            print(f"bare paho QoS1 one-by-one to subscriber: {b:,.0f} msg/s (baseline)")
            for (_, group, drain), xs in ours.items():
                o = statistics.median(xs)
                what = (
                    "committed outbox drained"
                    if drain
                    else f"emit_many({group}) + fsync each, end to end"
                )
                print(f"outbox QoS1 batches to subscriber, {what}: {o:,.0f} events/s | "
                      f"ratio {o / b:.2f}x")  # fmt: skip
            for g in (a.group, 100):
                on, off = validation_cost(work, g)
                if off:
                    print(f"append only, emit_many({g}): {on:,.0f} events/s with the wire-schema "
                          f"check, {off:,.0f} without | ratio {on / off:.2f}x, "
                          f"{(1 / on - 1 / off) * 1e6:.1f} us/event")  # fmt: skip
            lat = sync_latency(broker.port, work, a.latency_events, 100.0)
            blat = bare_latency(broker.port, a.latency_events, 100.0, payloads[0])
            print(f"latency @100 ev/s, creation->PUBACK: outbox p50 {pct(lat, .5):.2f} ms "
                  f"p99 {pct(lat, .99):.2f} ms | bare paho publish->PUBACK p50 "
                  f"{pct(blat, .5):.2f} ms p99 {pct(blat, .99):.2f} ms | p99 ratio "
                  f"{pct(lat, .99) / pct(blat, .99):.2f}x")  # fmt: skip
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
