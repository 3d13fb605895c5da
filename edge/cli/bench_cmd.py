"""``edge bench MODEL``: per-stage latency on this machine (medians)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge import gc_pause
from edge.cli.models_cmd import add_home_option
from edge.cli.output import emit_json, table
from edge.errors import InputError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="time pre-processing, inference and decoding of a model")
    p.add_argument("model", metavar="MODEL", help="zoo name, manifest or bundle folder")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--runs", type=int, default=200, help="timed runs (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed runs first (default 20)")
    p.add_argument(
        "--input",
        type=Path,
        help="an image (or WAV for audio models); default: a synthetic 640×480 frame / 16 s noise",
    )
    p.add_argument("--backend", choices=["onnxruntime", "tflite"])
    p.add_argument("--json", action="store_true")
    add_home_option(p)
    p.set_defaults(handler=run, gc_paused_start=True)  # resumed below (edge.gc_pause)


def _median(xs: list[float]) -> float:
    import statistics  # here: every command's parser imports this module

    return statistics.median(xs) if xs else float("nan")


def _synthetic_frame() -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    base = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    noise = rng.integers(0, 32, size=base.shape, dtype=np.uint8)
    out: npt.NDArray[np.uint8] = base + noise
    return out


def run(args: argparse.Namespace) -> int:
    from edge.detectors import load_detector

    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        raise InputError("--runs and --threads must be ≥ 1 and --warmup ≥ 0")
    model, det = load_detector(
        args.model, threads=args.threads, backend=args.backend, home=args.home
    )
    gc_pause.resume()  # timed as a stream runs: with the collector on
    try:
        if model.manifest.input.kind == "audio":
            doc = _bench_audio(args, det)
        else:
            doc = _bench_image(args, model, det)
    finally:
        det.close()
    doc = {"model": model.manifest.name, "threads": args.threads, "runs": args.runs, **doc}
    if args.json:
        emit_json(doc)
        return 0
    rows = [[k, f"{v:.3f}"] for k, v in doc["median_ms"].items()]
    print(f"{doc['model']}: {args.runs} runs, {args.threads} thread(s), input {doc['input']}")
    print(table(rows, ["STAGE", "MEDIAN ms"]))
    for key in ("ratio_e2e_to_invoke", "fps", "real_time_factor"):
        if key in doc:
            print(f"{key}: {doc[key]}")
    return 0


def _bench_image(args: argparse.Namespace, model: Any, det: Any) -> dict[str, Any]:
    from edge.detectors.preprocess import ImagePreprocessor
    from edge.media.image import read_image
    from edge.runtime import BackendOptions, load_backend

    image = read_image(args.input) if args.input else _synthetic_frame()
    stages: dict[str, list[float]] = {}
    e2e: list[float] = []
    for i in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        det.detect(image)
        dt = (time.perf_counter() - t0) * 1000
        if i >= args.warmup:
            e2e.append(dt)
            for k, v in det.times.ms.items():
                stages.setdefault(k, []).append(v)
    # The bare model on the same tensor, in its own session: the floor for e2e.
    bare = load_backend(model.path, BackendOptions(threads=args.threads), args.backend)
    try:
        tensor, _ = ImagePreprocessor(model.manifest.input, bare.inputs[0])(image)
        feeds = {bare.inputs[0].name: tensor}
        bare_ms: list[float] = []
        for i in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            bare.run(feeds)
            if i >= args.warmup:
                bare_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        bare.close()
    med = {k: _median(v) for k, v in stages.items()}
    med["e2e"] = _median(e2e)
    med["bare_invoke"] = _median(bare_ms)
    return {
        "input": str(args.input) if args.input else "synthetic 640x480",
        "median_ms": {k: round(v, 4) for k, v in med.items()},
        "ratio_e2e_to_invoke": round(med["e2e"] / med["bare_invoke"], 3),
        "fps": round(1000.0 / med["e2e"], 1),
    }


def _bench_audio(args: argparse.Namespace, det: Any) -> dict[str, Any]:
    rate = det.manifest.input.sample_rate
    if args.input:
        from edge.media.audio import read_audio

        samples = read_audio(args.input, rate)
    else:
        rng = np.random.default_rng(0)
        samples = (rng.standard_normal(16 * rate) * 0.05).astype(np.float32)
    runs = max(1, min(args.runs, 30))
    times: list[float] = []
    for i in range(min(args.warmup, 3) + runs):
        det.reset()
        t0 = time.perf_counter()
        det.feed(samples)
        det.flush()
        if i >= min(args.warmup, 3):
            times.append((time.perf_counter() - t0) * 1000)
    med = _median(times)
    duration = len(samples) / rate
    return {
        "input": str(args.input) if args.input else f"synthetic noise {duration:.1f} s",
        "median_ms": {"file": round(med, 3), "per_second_of_audio": round(med / duration, 3)},
        "real_time_factor": round(duration * 1000 / med, 1),
    }
