"""A device in a child process, so tests can ``kill -9`` it: outbox + publisher, no daemon.

``python -m tests.support.publisher_proc --port P --data DIR --emit N [--every S]``
emits N events (batches of ``--group``), printing ``committed <next_seq>`` after each
commit, then keeps publishing until SIGTERM, which stops it cleanly (status ``stopped``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from cloud_sync.sink import MqttSink
from edge.config import OutboxConfig, SyncConfig
from edge.events import Event, ModelRef

MODEL = ModelRef("blazeface-short", "1", "0123456789abcdef")


def make_events(n: int, stream: str = "cam0") -> list[Event]:
    now = time.time()
    return [
        Event(stream, "vision", "face", 0.9, "update", now, now, MODEL, track_id=i % 7,
              box=(0.1, 0.2, 0.3, 0.4), latency_ms=3.0)
        for i in range(n)
    ]  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--device", default="cam1")
    p.add_argument("--emit", type=int, default=0)
    p.add_argument("--group", type=int, default=10)
    p.add_argument("--every", type=float, default=0.0, help="seconds between groups")
    p.add_argument("--delivery", default="hub", choices=["hub", "broker"])
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    cfg = SyncConfig(
        port=a.port, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5,
        puback_timeout_s=3.0, outbox=OutboxConfig(path=Path("outbox.db")),
        delivery=a.delivery, hub_ack_timeout_s=2.0,
    )  # fmt: skip
    sink = MqttSink(cfg, a.device, a.data)
    done = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_term)
    print("ready", sink.boot_id, flush=True)
    sent = 0
    while sent < a.emit and not done.is_set():
        n = min(a.group, a.emit - sent)
        sink.emit_many(make_events(n))
        sent += n
        print("committed", sink.outbox.stats().next_seq, flush=True)
        if a.every:
            time.sleep(a.every)
    print("emitted", sent, flush=True)
    done.wait()
    sink.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
