"""INT8 (x86-64-vnni recipe) vs FP32 on this machine, side by side, for two models:

- ppocr-det: median invoke latency at 1 and 2 threads on the same 736×736 input, box F1
  vs FP32 on held-out scenes, conversion wall time. Goal: ≥ 1.6× at 1 thread.
- nanodet-m: the same at 1 thread on 416×416 (the profile's gfl family recipe: the first
  4 convs in float), box F1 vs FP32 on held-out photos (tests/fixtures/coco_photos.py).
  Goal: ≥ 1.8× at 1 thread at box F1 ≥ 0.95.

FP32 and INT8 invokes alternate in one loop, so a busy neighbour slows both alike.

    .venv/bin/python bench/bench_convert.py [ppocr-det|nanodet-m ...]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from converters.cli import main as convert
from edge.models.resolve import resolve
from edge.runtime import BackendOptions, load_backend
from edge.units import format_size
from tests.fixtures import coco_photos
from tests.fixtures.convert_scenes import (
    CALIBRATION_PHOTOS,
    EVALUATION_PHOTOS,
    write_scenes,
)

REPEATS = 30


def medians_ms(fp32: Path, int8: Path, threads: int, x: np.ndarray) -> tuple[float, float]:
    """Median invoke of both models, alternating one call each (warm-up first)."""
    backends = [load_backend(m, BackendOptions(threads=threads)) for m in (fp32, int8)]
    name = backends[0].inputs[0].name
    times: list[list[float]] = [[], []]
    for i in range(REPEATS + 3):
        for b, t in zip(backends, times, strict=True):
            t0 = time.perf_counter()
            b.run({name: x})
            if i >= 3:
                t.append((time.perf_counter() - t0) * 1000)
    for b in backends:
        b.close()
    return statistics.median(times[0]), statistics.median(times[1])


def _convert(model: str, calib: Path, evals: Path, out: Path) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    args = ["--calibration", str(calib), "--eval", str(evals)]
    rc = convert([model, "--profile", "x86-64-vnni", *args, "-o", str(out)])
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"{model}: conversion failed (exit {rc})")
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report, wall


def _print(model: str, report: dict[str, Any], wall: float, n_calib: int, n_eval: int) -> None:
    print(f"{model}: conversion wall time {wall:.1f} s ({n_calib} calibration images, "
          f"{n_eval} evaluation images)")  # fmt: skip
    fp32, int8 = report["size_fp32"], report["size_converted"]
    print(f"{model}: size FP32 {format_size(fp32)}, INT8 {format_size(int8)}, "
          f"ratio {int8 / fp32:.3f}")  # fmt: skip
    print(f"{model}: box F1 INT8 vs FP32 at IoU 0.5: {report['task_value']:.4f} "
          f"on {report['samples']} held-out images")  # fmt: skip


def ppocr(root: Path) -> None:
    src = resolve("ppocr-det")
    calib = write_scenes(root / "calib", CALIBRATION_PHOTOS, 1, seed=1)
    evals = write_scenes(root / "eval", EVALUATION_PHOTOS, 2, seed=2)
    report, wall = _convert("ppocr-det", root / "calib", root / "eval", root / "b")
    _print("ppocr-det", report, wall, len(calib), len(evals))
    int8 = next((root / "b").glob("*.onnx"))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 736, 736)).astype(np.float32)
    for threads in (1, 2):
        fp32, q = medians_ms(src.path, int8, threads, x)
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        print(f"ppocr-det: {label} 1×3×736×736: FP32 {fp32:.1f} ms, INT8 {q:.1f} ms, "
              f"speedup {fp32 / q:.2f}× (median of {REPEATS})")  # fmt: skip


def nanodet(root: Path) -> None:
    src = resolve("nanodet-m")
    calib = coco_photos.write_photos(root / "calib", coco_photos.CALIBRATION_PHOTOS)
    evals = coco_photos.write_photos(root / "eval", coco_photos.EVALUATION_PHOTOS)
    report, wall = _convert("nanodet-m", root / "calib", root / "eval", root / "b")
    _print("nanodet-m", report, wall, len(calib), len(evals))
    int8 = next((root / "b").glob("*.onnx"))
    kept = report["recipe"].get("float_stem_convs", 0)
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 416, 416)).astype(np.float32)
    fp32, q = medians_ms(src.path, int8, 1, x)
    print(f"nanodet-m: 1 thread 1×3×416×416: FP32 {fp32:.1f} ms, INT8 {q:.1f} ms, speedup "
          f"{fp32 / q:.2f}× (median of {REPEATS}; first {kept} convs in float; goal ≥ 1.8× "
          f"at F1 ≥ 0.95)")  # fmt: skip


def run(models: list[str]) -> None:
    benches = {"ppocr-det": ppocr, "nanodet-m": nanodet}
    for model in models or list(benches):
        if model not in benches:
            raise SystemExit(f"unknown model {model!r}; expected one of {', '.join(benches)}")
        with tempfile.TemporaryDirectory() as tmp:
            benches[model](Path(tmp))


if __name__ == "__main__":
    run(sys.argv[1:])
