"""PP-OCRv4 det (zoo ``ppocr-det``): end-to-end ``detect()`` vs the bare model call, 1 thread.

Run: ``.venv/bin/python bench/bench_ppocr.py [--runs N]``. The input is scikit-image's
``astronaut`` with four lines of text drawn on it, resized to each size. The two
measurements alternate run by run, so background load hits both alike. Medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.detectors import build_detector
from edge.detectors.db_text import DBTextDetector
from edge.models.resolve import resolve
from edge.runtime import Backend, BackendOptions, load_backend
from tests.fixtures.text_scene import astronaut_scene

SIZES = ((640, 480), (1280, 720))


def bench_size(det: DBTextDetector, backend: Backend, w: int, h: int, runs: int) -> str:
    scene, _ = astronaut_scene()
    image = np.asarray(cv2.resize(scene, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
    tensor, _ = det._pre(image)  # the exact tensor detect() feeds the model
    feeds = {backend.inputs[0].name: tensor}
    for _ in range(2):  # warm-up
        det.detect(image)
        backend.run(feeds)
    e2e, bare = [], []
    stages: dict[str, list[float]] = {"pre": [], "invoke": [], "post": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        n = len(det.detect(image))
        e2e.append((time.perf_counter() - t0) * 1000.0)
        for k, v in stages.items():
            v.append(det.times.ms[k])
        t0 = time.perf_counter()
        backend.run(feeds)
        bare.append((time.perf_counter() - t0) * 1000.0)
    e2e_ms, bare_ms = statistics.median(e2e), statistics.median(bare)
    parts = ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in stages.items())
    return (
        f"ppocr-det {w}x{h} e2e {e2e_ms:.1f} ms vs bare invoke {bare_ms:.1f} ms: "
        f"{e2e_ms / bare_ms:.2f}x  (model input {tensor.shape[3]}x{tensor.shape[2]}; {parts}; "
        f"{n} boxes; 1 thread, median of {runs})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per figure (default 15)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    r = resolve("ppocr-det")
    backend = load_backend(r.path, BackendOptions(threads=1))
    det = build_detector(r.manifest, backend, r.origin)
    assert isinstance(det, DBTextDetector)
    for w, h in SIZES:
        print(bench_size(det, backend, w, h, args.runs), flush=True)
    det.close()


if __name__ == "__main__":
    main()
