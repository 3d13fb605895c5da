"""``edge``: the on-device daemon and its tools.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and a
``run(args) -> int``. Errors a user can fix (``EdgeError``) become one line on
stderr and its exit code (``edge.exit_codes``, docs/cli.md); ``--debug`` shows the
traceback. ``-q`` leaves only warnings and errors on stderr: no progress lines, and
not LiteRT's native INFO line either.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from edge import __version__, gc_pause, native_stderr, progress, redact
from edge.argparser import ArgumentParser
from edge.cli import (
    bench_cmd,
    demo_cmd,
    detect_cmd,
    doctor_cmd,
    examples_cmd,
    models_cmd,
    outbox_cmd,
    run_cmd,
    validate_cmd,
)
from edge.errors import run_cli

COMMANDS: list[ModuleType] = [
    models_cmd,
    detect_cmd,
    bench_cmd,
    run_cmd,
    validate_cmd,
    doctor_cmd,
    demo_cmd,
    outbox_cmd,
    examples_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="edge", description="edgewise: run vision and audio models on edge devices."
    )
    parser.add_argument("--version", action="version", version=f"edgewise {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    redact.install()  # no credential in any log line, ours or a library's
    progress.configure("edge", quiet=args.quiet)
    native_stderr.set_quiet(args.quiet and not args.debug)
    handler: Callable[[argparse.Namespace], int] = args.handler
    if not getattr(args, "gc_paused_start", False):
        gc_pause.resume()  # the start-up is over; the commands that set this resume it later
    return run_cli("edge", lambda: handler(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
