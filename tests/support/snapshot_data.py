"""Real JPEGs (OpenCV's encoder) and ``Snapshot`` objects for the snapshot delivery tests.

``python -m tests.support.snapshot_data DIR [--port P]`` is also a child process for
``kill -9`` tests: it commits snapshots to ``DIR/snapshots.db`` (with ``--port``, through an
``MqttSink`` whose publisher sends them to that broker meanwhile) and prints
``ok <event_id> <kind>`` after each commit has returned, until it is killed (the bare
store's bound is ``--max-bytes``, 1 GiB by default, so nothing it reported is dropped).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge.events import uuid7
from edge.snapshots import Snapshot
from edge.wire import SnapshotKind


def jpeg(width: int = 160, height: int = 120, seed: int = 0, quality: int = 90) -> bytes:
    """Noise compresses badly: a 320x240 one is ~60-90 KB, so size bounds are reached fast."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buf.tobytes())


def snapshot(
    event_id: str | None = None,
    kind: SnapshotKind = "start",
    *,
    data: bytes | None = None,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
) -> Snapshot:
    body = data if data is not None else jpeg(width, height, seed)
    return Snapshot(event_id or uuid7(), "cam0", kind, time.time(), body, width, height,
                    (0.1, 0.2, 0.5, 0.6))  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dir", type=Path)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--every", type=float, default=0.0, help="seconds between puts")
    p.add_argument("--max-bytes", type=int, default=1 << 30, help="bare store: its bound")
    a = p.parse_args()
    if a.port:
        from cloud_sync.sink import MqttSink
        from edge.config import SyncConfig

        quick = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
        cfg = SyncConfig.model_validate({"port": a.port, "delivery": "broker", **quick})
        sink = MqttSink(cfg, "cam1", a.dir)
        put = sink.snapshots.put
    else:
        from cloud_sync.outbox.snapshots import SnapshotStore

        put = SnapshotStore(a.dir / "snapshots.db", "cam1", max_bytes=a.max_bytes).put
    print("open", flush=True)
    i = 0
    while True:
        s = snapshot(kind="best", width=320, height=240, seed=i % 8)
        if put(s):
            sys.stdout.write(f"ok {s.event_id} {s.kind}\n")
            sys.stdout.flush()
        i += 1
        time.sleep(a.every)


if __name__ == "__main__":
    raise SystemExit(main())
