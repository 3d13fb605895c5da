"""`edge detect` cold start: process start to result, against the bare imports it needs.

    .venv/bin/python bench/bench_cold_start.py [--runs 7]

Baseline, measured in the same run: a Python process that only imports numpy,
OpenCV and the TFLite interpreter (what any detector process must pay).
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    # edge's bytecode cached, as pip leaves an installed package (bench_startup.py says why)
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "edge", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "astronaut.png"
        try:
            import skimage.data

            rgb = skimage.data.astronaut()
        except ImportError:
            rgb = np.full((512, 512, 3), 128, np.uint8)
        cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        edge = [
            sys.executable,
            "-m",
            "edge",  # the program, as the `edge` console script runs it (edge.cli.entry)
            "-q",
            "detect",
            "blazeface-short",
            str(image),
            "--json",
        ]
        bare = [sys.executable, "-c", "import numpy, cv2; from ai_edge_litert import interpreter"]
        subprocess.run(
            edge, check=True, capture_output=True
        )  # pulls the model if needed; warms the page cache
        ours, base = [], []
        for _ in range(args.runs):
            ours.append(_time(edge))
            base.append(_time(bare))
    o, b = statistics.median(ours), statistics.median(base)
    print(
        f"edge detect blazeface-short cold start {o:.0f} ms (process start to JSON result) "
        f"vs bare imports (numpy, cv2, LiteRT) {b:.0f} ms: {o / b:.2f}x (target <= 2.5x); "
        f"medians of {args.runs}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
