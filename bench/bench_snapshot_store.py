"""The snapshot store's cost, and that it does not slow the events down (one run).

1. ``SnapshotStore.put`` (encode + one fsync'd commit) per snapshot size, ms p50 / p99.
2. Event appends (groups of 10, ``Outbox.append``) p50 / p99 alone, and again while a
   thread commits a 70 KiB snapshot every 20 ms into the store beside it (its own file,
   its own lock): the separate file is meant to keep the second figure near the first.
3. Snapshots from ``emit_snapshot`` to PUBACK'd and deleted through a private mosquitto,
   snapshots/s and MiB/s.

``.venv/bin/python bench/bench_snapshot_store.py [--n 200]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sync.outbox import Outbox
from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from edge.demo.broker import free_port
from edge.events import uuid7
from tests.support.mosquitto import Broker
from tests.support.publisher_proc import make_events
from tests.support.snapshot_data import snapshot


def pct(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs):6.2f} ms  p99 {xs[int(len(xs) * 0.99) - 1]:6.2f} ms"


def puts(d: Path, n: int) -> None:
    for w, h in ((160, 120), (320, 240), (640, 480)):
        store = SnapshotStore(d / f"s{w}.db", "cam1", max_bytes=1 << 30)
        shots = [snapshot(seed=i, width=w, height=h) for i in range(n)]
        ms = []
        for s in shots:
            t = time.perf_counter()
            assert store.put(s)
            ms.append((time.perf_counter() - t) * 1000)
        kb = len(shots[0].jpeg) / 1024
        print(f"put {w}x{h} ({kb:5.1f} KiB): {pct(ms)}")
        store.close()


def appends(d: Path, n: int, with_snapshots: bool) -> list[float]:
    ob = Outbox(
        d / f"o{int(with_snapshots)}.db",
        "cam1",
        uuid7(),
        state_path=d / f"st{int(with_snapshots)}.json",
    )
    store = SnapshotStore(d / f"b{int(with_snapshots)}.db", "cam1", max_bytes=1 << 30)
    stop = threading.Event()
    shots = [snapshot(seed=i, width=320, height=240) for i in range(8)]

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.put(replace(shots[i % 8], event_id=uuid7()))
            i += 1
            time.sleep(0.02)

    t = threading.Thread(target=writer)
    if with_snapshots:
        t.start()
    ms = []
    for _ in range(n):
        evs = make_events(10)
        s = time.perf_counter()
        ob.append(evs)
        ms.append((time.perf_counter() - s) * 1000)
        time.sleep(0.005)
    stop.set()
    if with_snapshots:
        t.join()
    ob.close()
    store.close()
    return ms


def delivery(d: Path, n: int) -> None:
    port = free_port()
    b = Broker(d / "broker", port).start()
    try:
        cfg = SyncConfig.model_validate({"port": port, "delivery": "broker"})
        with MqttSink(cfg, "cam1", d / "data") as sink:
            assert sink.publisher.connected.wait(10)
            shots = [snapshot(seed=i, width=320, height=240) for i in range(n)]
            t = time.perf_counter()
            for s in shots:
                sink.emit_snapshot(s)
            while sink.snapshots.stats().queued:
                time.sleep(0.005)
            dt = time.perf_counter() - t
            mb = sum(len(s.jpeg) for s in shots) / 2**20
            print(f"emit_snapshot -> PUBACK'd, deleted: {n / dt:6.1f} snapshots/s, "
                  f"{mb / dt:5.1f} MiB/s (320x240, ~{mb * 1024 / n:.0f} KiB each)")  # fmt: skip
    finally:
        b.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--dir", type=Path, default=None, help="on the disk to measure (not tmpfs)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        d = Path(tmp)
        puts(d, a.n)
        alone = appends(d, a.n * 2, False)
        beside = appends(d, a.n * 2, True)
        ratio = statistics.median(beside) / statistics.median(alone)
        print(
            f"event append (10 events), snapshots committed beside it: {pct(beside)} "
            f"vs alone {pct(alone)}: {ratio:.2f}x (median)"
        )
        delivery(d, a.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
