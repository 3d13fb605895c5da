"""ppocr-det INT8 (x86-64-vnni recipe) vs FP32 on this machine: median invoke latency at 1
and 2 threads on the same 736×736 input, box F1 vs FP32 on held-out scenes, conversion
wall time. Goal: ≥ 1.6× at 1 thread.

    .venv/bin/python bench/bench_convert.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from converters.cli import main as convert
from edge.models.resolve import resolve
from edge.runtime import BackendOptions, load_backend
from tests.fixtures.convert_scenes import (
    CALIBRATION_PHOTOS,
    EVALUATION_PHOTOS,
    write_scenes,
)

REPEATS = 30


def median_ms(model: Path, threads: int, x: np.ndarray) -> float:
    b = load_backend(model, BackendOptions(threads=threads))
    name = b.inputs[0].name
    for _ in range(3):
        b.run({name: x})
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        b.run({name: x})
        times.append((time.perf_counter() - t0) * 1000)
    b.close()
    return statistics.median(times)


def run() -> None:
    src = resolve("ppocr-det")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scenes(root / "calib", CALIBRATION_PHOTOS, 1, seed=1)
        write_scenes(root / "eval", EVALUATION_PHOTOS, 2, seed=2)
        t0 = time.perf_counter()
        args = ["--calibration", str(root / "calib"), "--eval", str(root / "eval")]
        rc = convert(["ppocr-det", "--profile", "x86-64-vnni", *args, "-o", str(root / "b")])
        wall = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"conversion failed (exit {rc})")
        report = json.loads((root / "b" / "report.json").read_text())
        int8 = next((root / "b").glob("*.onnx"))
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 736, 736)).astype(np.float32)
        print(f"conversion wall time: {wall:.1f} s (12 calibration images, 8 evaluation images)")
        mb_fp32, mb_int8 = report["size_fp32"] / 1e6, report["size_converted"] / 1e6
        print(f"size: FP32 {mb_fp32:.2f} MB, INT8 {mb_int8:.2f} MB, ratio {mb_int8 / mb_fp32:.3f}")
        print(f"box F1 INT8 vs FP32 at IoU 0.5: {report['task_value']:.4f} "
              f"on {report['samples']} held-out images")  # fmt: skip
        for threads in (1, 2):
            fp32 = median_ms(src.path, threads, x)
            q = median_ms(int8, threads, x)
            print(f"{threads} thread{'s' if threads > 1 else ''} 1×3×736×736: FP32 {fp32:.1f} ms, "
                  f"INT8 {q:.1f} ms, speedup {fp32 / q:.2f}× (median of {REPEATS})")  # fmt: skip


if __name__ == "__main__":
    run()
