"""The tracker's cost per frame with 1, 10 and 50 objects: ByteTrack beside the IoU tracker.

    .venv/bin/python bench/bench_tracker.py [--runs N]

The objects (one label) walk in straight lines at random speeds over a 10 s sequence at
10 frames/s, with the noise of tests/fixtures/mot_scene.py's detector: box jitter 4 %,
8 % of boxes missed, 10 % at a low score, Poisson(0.5) false positives a frame. Both
trackers get every box down to 0.1 (the IoU tracker then tracks the low-score ones too:
more tracks, so this is not its best case either). Per run: the median time of one
``Tracker.update`` over the sequence's frames; printed: the median of the runs, and
ByteTrack's cost as a ratio of the IoU tracker's measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import TrackingConfig  # noqa: E402
from edge.tracking import Observation, Tracker  # noqa: E402

FPS, SECONDS = 10, 10.0


def sequence(n: int, seed: int = 0) -> list[list[Observation]]:
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.04, 0.12, (n, 2))
    start = rng.uniform(0, 1 - size, (n, 2))
    speed = rng.uniform(-0.03, 0.03, (n, 2))  # a frame
    frames: list[list[Observation]] = []
    for i in range(int(SECONDS * FPS)):
        xy = np.abs((start + speed * i) % 2 - 1) * (1 - size)  # bounce off the edges
        obs = []
        for k in range(n):
            if rng.random() < 0.08:
                continue
            score = 0.8 if rng.random() >= 0.1 else float(rng.uniform(0.2, 0.45))
            w, h = size[k]
            x, y = xy[k] + rng.normal(0, 0.04, 2) * size[k]
            obs.append(Observation("person", score, (x, y, x + w, y + h)))
        for _ in range(rng.poisson(0.5)):
            x, y = rng.uniform(0, 0.9, 2)
            obs.append(
                Observation("person", float(rng.uniform(0.1, 0.6)), (x, y, x + 0.08, y + 0.1))
            )
        frames.append(obs)
    return frames


def run_ms(kind: Literal["bytetrack", "iou"], frames: list[list[Observation]]) -> float:
    """Median ms of one update over the sequence."""
    t = Tracker(TrackingConfig(kind=kind))
    times = []
    for i, obs in enumerate(frames):
        t0 = time.perf_counter()
        t.update(obs, i / FPS)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per variant (median)")
    args = ap.parse_args()
    for n in (1, 10, 50):
        frames = sequence(n)
        run_ms("bytetrack", frames), run_ms("iou", frames)  # warm-up
        byte, iou = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            byte.append(run_ms("bytetrack", frames))
            iou.append(run_ms("iou", frames))
        b, i = statistics.median(byte), statistics.median(iou)
        print(
            f"tracker, {n} object{'s' if n > 1 else ''} at {FPS} frames/s, median of {args.runs}: "
            f"bytetrack {b:.3f} ms/frame vs iou tracker {i:.3f} ms/frame: {b / i:.1f}x"
        )


if __name__ == "__main__":
    main()
