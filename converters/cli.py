"""``edge-convert``: an FP32 ONNX model into a bundle for a device profile.

MODEL is a zoo name (``ppocr-det``), a manifest/bundle path, or an ``.onnx`` file with
a ``manifest.json`` beside it or ``--manifest FILE`` (the manifest gives the input
spec and decoder; a model without one cannot be calibrated or evaluated faithfully).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge import __version__, native_stderr, progress, redact
from edge.argparser import ArgumentParser
from edge.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="edge-convert",
        description="Convert an FP32 ONNX model into a bundle for a device profile, "
        "evaluate it against FP32 and check the profile's accuracy gate.",
    )
    p.add_argument("--version", action="version", version=f"edgewise {__version__}")
    p.add_argument("model", metavar="MODEL", nargs="?", help="zoo name, manifest or .onnx file")
    p.add_argument("--profile", "-p", help="device profile name or .toml path")
    p.add_argument("--calibration", "-c", type=Path, help="image/audio folder or .npy")
    p.add_argument("--eval", type=Path, dest="eval_path", help="evaluation set (default: "
                   "every 4th calibration image, held out of calibration)")  # fmt: skip
    p.add_argument("-o", "--out", type=Path, help="bundle folder to write")
    p.add_argument("--manifest", type=Path, help="manifest for a bare .onnx MODEL")
    fallback = "keep the worst-quantized nodes in float until the gate passes"
    p.add_argument("--auto-fallback", action="store_true", help=fallback)
    p.add_argument("--fallback-rounds", type=_positive, default=8, metavar="N",
                   help="--auto-fallback rounds at most, two nodes each (default: 8)")  # fmt: skip
    p.add_argument("--threads", type=int, help="threads for evaluation (default: the profile's)")
    p.add_argument("--list-profiles", action="store_true", help="list device profiles and exit")
    p.add_argument("--json", action="store_true", help="print the report summary as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines, only warnings and errors"
    )
    return p


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def _list_profiles(as_json: bool) -> int:
    from edge.cli.output import emit_json, table
    from edge.profiles import all_profiles

    profiles = all_profiles()
    if as_json:
        emit_json([p.model_dump(mode="json") for p in profiles.values()])
        return 0
    rows = [
        (p.name, p.hardware.arch, p.runtime.name, p.recipe.format, p.recipe.precision, p.title)
        for p in profiles.values()
    ]
    print(table(rows, ["profile", "arch", "runtime", "format", "precision", "hardware"]))
    return 0


def _warn(text: str) -> None:
    """What the user must know even on success (a metric fallback, a coarser ranking)."""
    print(f"edge-convert: warning: {text}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    if args.list_profiles:
        return _list_profiles(args.json)
    from converters.errors import ConversionError

    missing = [n for n in ("model", "profile", "calibration", "out") if not getattr(args, n)]
    if missing:
        flags = ", ".join("MODEL" if n == "model" else f"--{n}" for n in missing)
        raise ConversionError(f"missing {flags}; see edge-convert --help")
    from converters.convert import Request, run
    from edge.cli.output import emit_json
    from edge.profiles import get_profile

    req = Request(
        model=args.model, profile=get_profile(args.profile), calibration=args.calibration,
        out=args.out, eval_path=args.eval_path, manifest=args.manifest,
        auto_fallback=args.auto_fallback, threads=args.threads,
        fallback_rounds=args.fallback_rounds,
    )  # fmt: skip
    report, out = run(req, warn=_warn)
    if args.json:
        emit_json(report.summary() | {"bundle": str(out)})
    else:
        print(
            f"{out}: {report.task_metric} {report.task_value:.4f} vs FP32, "
            f"{report.speedup:.2f}× faster ({report.latency_fp32_ms:.1f} → "
            f"{report.latency_converted_ms:.1f} ms), size {report.size_ratio:.2f}×, "
            f"converted in {report.conversion_s:.1f} s"
            + (f"; kept in float: {', '.join(report.excluded_nodes)}" * bool(report.excluded_nodes))
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING
    fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    redact.install()  # no credential in any log line, ours or a library's
    progress.configure("edge-convert", quiet=args.quiet)
    native_stderr.set_quiet(args.quiet and not args.debug)
    return run_cli("edge-convert", lambda: _run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
