"""Event snapshots: what encoding costs per event, and what taking them costs the pipeline.

Prints, medians over runs in the same process:
- ms to encode one event's set (the 640 px frame + the 320 px crop, quality 70, the
  defaults) from a 640×480 and a 1920×1080 frame, beside one BlazeFace short inference
  on the same frame (the work every frame already pays), as a ratio;
- the pipeline's frames/s on the face video (BlazeFace short, 1 thread) with snapshots
  on (a recording sink, all four kinds) vs off, runs interleaved, as a ratio, and the
  snapshots each run made; and the process's CPU time per frame, on vs off (frames/s
  swings ±30 % on a shared 2-core machine, CPU time much less).
Encoding runs on its own thread (edge.snapshots.encoder): on 2 cores it competes with
decode and inference only for CPU, never for the post thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig, SnapshotsConfig, StreamConfig, TrackingConfig  # noqa: E402
from edge.detectors import load_detector  # noqa: E402
from edge.pipeline import StreamRunner, load_slot  # noqa: E402
from edge.snapshots import Snapshot  # noqa: E402
from edge.snapshots.encoder import SnapshotEncoder, SnapshotJob, encode_job  # noqa: E402
from tests.fixtures.video import DEFAULT_SPANS, face_video  # noqa: E402


def face_frame(video: Path, index: int = 45) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    for _ in range(index):
        cap.read()
    ok, img = cap.read()
    cap.release()
    assert ok
    return np.asarray(img, np.uint8)


def encode_ms(image: np.ndarray, box: tuple[float, float, float, float], n: int) -> float:
    cfg = SnapshotsConfig()
    job = SnapshotJob("e", "cam", ("start", "start_crop"), 0.0, image, box)
    encode_job(job, cfg)  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        encode_job(job, cfg)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def infer_ms(image: np.ndarray, n: int) -> float:
    _, det = load_detector("blazeface-short", threads=1)
    for _ in range(5):
        det.detect(image)  # type: ignore[union-attr]  # an image detector
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        det.detect(image)  # type: ignore[union-attr]
        times.append((time.perf_counter() - t0) * 1000)
    det.close()
    return statistics.median(times)


def pipeline_fps(video: Path, snapshots: bool) -> tuple[float, float, int]:
    """Frames/s (wall), CPU ms a frame (every thread of the process: less sensitive to
    what else runs on the machine) and the snapshots made."""
    cfg = StreamConfig(name="b", source=str(video), detectors=["face"])
    slot = load_slot("face", DetectorConfig(model="blazeface-short", threads=1), 0.6, None)
    got: list[Snapshot] = []
    enc = SnapshotEncoder(SnapshotsConfig(), got.append) if snapshots else None
    r = StreamRunner(cfg, [slot], TrackingConfig(min_hits=3, max_missing=5), lambda e: None,
                     snapshots=enc)  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    if enc is not None:
        enc.start()
    r.start()
    r.done.wait(120)
    dt = time.perf_counter() - t0  # the pipeline's time: its last event is out
    if enc is not None:
        enc.close(10.0)  # the last track's best pictures, counted below (and their CPU)
    cpu = time.process_time() - c0
    r.join(5)
    slot.close()
    n = r.metrics.processed
    return n / dt, cpu * 1000 / n, len(got)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="pipeline runs per variant (median)")
    args = ap.parse_args()
    with TemporaryDirectory() as tmp:
        video, _ = face_video(Path(tmp) / "faces.avi", 300, DEFAULT_SPANS)
        img = face_frame(video)
        box = (380 / 640, 60 / 480, 620 / 640, 300 / 480)  # the pasted face patch
        big = np.asarray(cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_CUBIC), np.uint8)
        for name, frame in (("640x480", img), ("1920x1080", big)):
            e, i = encode_ms(frame, box, 50), infer_ms(frame, 50)
            print(
                f"snapshot set (frame + crop) from a {name} frame: {e:.2f} ms to encode vs "
                f"{i:.2f} ms for one BlazeFace short inference: {e / i:.2f}x"
            )
        pipeline_fps(video, True)  # warm-up (model load, file cache)
        runs: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
        for i in range(args.runs):  # interleaved, each order in turn, so drift hits both alike
            for on in (True, False) if i % 2 else (False, True):
                runs[on].append(pipeline_fps(video, on))
        fps = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
        made = statistics.median(r[2] for r in runs[True])
        print(
            f"pipeline, face video 300 frames, median of {args.runs}: snapshots on "
            f"{fps[True]:.1f} frames/s ({made:.0f} snapshots a run) vs off "
            f"{fps[False]:.1f} frames/s: {fps[True] / fps[False]:.3f}x"
        )
        print(
            f"pipeline CPU (all threads) per frame, median of {args.runs}: snapshots on "
            f"{cpu[True]:.3f} ms vs off {cpu[False]:.3f} ms: {cpu[True] / cpu[False]:.3f}x"
        )


if __name__ == "__main__":
    main()
