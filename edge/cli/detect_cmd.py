"""``edge detect MODEL INPUT``: detections in an image (or a folder of them), or
speech segments in a WAV file."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from edge import gc_pause
from edge.cli.models_cmd import add_home_option
from edge.cli.output import emit_json, table
from edge.errors import InputError
from edge.runtime.base import AcceleratorInfo

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "detect",
        help="run a model on an image, a folder of images or a WAV file",
        description="MODEL is a zoo name, a manifest (.json/.toml) or a bundle folder.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", type=Path)
    p.add_argument("--json", action="store_true", help="JSON on stdout (JSON Lines for a folder)")
    p.add_argument("--draw", type=Path, metavar="OUT", help="write the image with detections drawn")
    p.add_argument("--threshold", type=float, help="score threshold (default: the manifest's)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--backend", choices=["onnxruntime", "tflite"], help="override the runtime")
    p.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME",
        help="onnxruntime execution provider or TFLite delegate library to try, in order "
        "(repeatable; default: the CPU)",
    )
    p.add_argument(
        "--accelerator-strict",
        action="store_true",
        help="fail instead of falling back to the CPU when a --provider cannot be used",
    )
    add_home_option(p)
    p.set_defaults(handler=run, gc_paused_start=True)  # resumed below (edge.gc_pause)


def _images_in(folder: Path) -> list[Path]:
    from edge.media.image import IMAGE_SUFFIXES

    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    from edge.detectors import load_detector, set_threshold
    from edge.models.resolve import resolve

    if args.threads < 1:
        raise InputError(f"--threads must be ≥ 1, got {args.threads}")
    resolved = resolve(args.model, args.home)  # a wrong model name is reported first
    if not args.input.exists():
        raise InputError(f"{args.input}: file not found")
    model, det = load_detector(
        resolved,
        threads=args.threads,
        backend=args.backend,
        providers=tuple(args.provider),
        strict=args.accelerator_strict,
    )
    load_ms = (time.perf_counter() - t_start) * 1000
    gc_pause.resume()  # the start-up ends with the model loaded
    if args.threshold is not None:
        set_threshold(det, args.threshold)
    try:
        if model.manifest.input.kind == "audio":
            return _run_audio(args, model.manifest.name, det, load_ms)
        inputs = _images_in(args.input) if args.input.is_dir() else [args.input]
        if args.draw is not None and len(inputs) > 1:
            args.draw.mkdir(parents=True, exist_ok=True)
        for path in inputs:
            _run_image(args, model.manifest.name, det, path, load_ms, many=len(inputs) > 1)
    finally:
        det.close()
    return 0


def _accelerator_text(info: AcceleratorInfo) -> str:
    return f"{info.active} ({info.backend})" + (" after a fallback" if info.fallback else "")


def _run_image(
    args: argparse.Namespace, name: str, det: Any, path: Path, load_ms: float, *, many: bool
) -> None:
    from edge.media.image import draw_detections, read_image, write_image

    t0 = time.perf_counter()
    image = read_image(path)
    read_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    detections = det.detect(image)
    total_ms = (time.perf_counter() - t1) * 1000
    drawn: Path | None = None
    if args.draw is not None:
        drawn = args.draw / (path.stem + ".png") if many else args.draw
        write_image(drawn, draw_detections(image, detections))
    timing = {"load": load_ms, "read": read_ms, **det.times.ms, "detect": total_ms}
    if args.json:
        emit_json(
            {
                "model": name,
                "input": str(path),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "detections": [d.to_json() for d in detections],
                "timing_ms": {k: round(v, 3) for k, v in timing.items()},
                "accelerator": det.accelerator.to_json(),
            }
            | ({"drawn": str(drawn)} if drawn is not None else {})
        )
        return
    print(
        f"{path}: {len(detections)} detection(s) by {name} in {total_ms:.1f} ms"
        f" on {_accelerator_text(det.accelerator)}"
    )
    if detections:
        rows = [
            [d.label, f"{d.score:.3f}", ", ".join(f"{v:.0f}" for v in d.box)] for d in detections
        ]
        print(table(rows, ["LABEL", "SCORE", "BOX x1, y1, x2, y2 (px)"]))
    if drawn is not None:
        print(f"{path}: drew {len(detections)} detection(s) into {drawn}")


def _run_audio(args: argparse.Namespace, name: str, det: Any, load_ms: float) -> int:
    from edge.media.audio import read_audio

    if args.draw is not None:
        raise InputError("--draw is for image models; an audio model returns segments")
    if args.input.is_dir():
        raise InputError(f"{args.input}: give one audio file, not a folder")
    rate = det.manifest.input.sample_rate
    t0 = time.perf_counter()
    samples = read_audio(args.input, rate)
    read_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    det.reset()
    segments = det.feed(samples) + det.flush()
    total_ms = (time.perf_counter() - t1) * 1000
    duration = len(samples) / rate
    if args.json:
        emit_json(
            {
                "model": name,
                "input": str(args.input),
                "duration": round(duration, 3),
                "segments": [s.to_json() for s in segments],
                "timing_ms": {
                    "load": round(load_ms, 3),
                    "read": round(read_ms, 3),
                    "detect": round(total_ms, 3),
                },
                "accelerator": det.accelerator.to_json(),
            }
        )
        return 0
    print(
        f"{args.input}: {len(segments)} segment(s) by {name} in {duration:.2f} s of audio "
        f"({total_ms:.1f} ms, {duration * 1000 / max(total_ms, 1e-6):.0f}x real time) "
        f"on {_accelerator_text(det.accelerator)}"
    )
    if segments:
        rows = [[s.label, f"{s.start:.3f}", f"{s.end:.3f}", f"{s.score:.3f}"] for s in segments]
        print(table(rows, ["LABEL", "START (s)", "END (s)", "SCORE"]))
    return 0
