"""``edge run --config device.toml``: the on-device daemon."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edge.redact import redact

_STD_ATTRS = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: ts, level, logger, msg, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for k, v in vars(record).items():
            if k not in _STD_ATTRS:
                doc[k] = v if isinstance(v, int | float | bool | None) else redact(str(v))
        if record.exc_info:  # the text edge.redact left (redacted), else formatted now
            doc["exc"] = redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(doc, separators=(",", ":"))


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the daemon: capture, detect, track, emit events",
        description="SIGTERM/SIGINT stop cleanly; SIGHUP reloads the config. Exit codes: "
        "0 stopped or every file source ended; 2 a config, model or input error; 3 another "
        "daemon holds the data dir; 4 a component failed for good (let the service manager "
        "restart it).",
    )
    p.add_argument("--config", "-c", type=Path, required=True, metavar="FILE", help="device config")
    p.add_argument("--log-json", action="store_true", help="structured JSON log lines on stderr")
    p.set_defaults(handler=run, gc_paused_start=True)  # resumed below (edge.gc_pause)


def run(args: argparse.Namespace) -> int:
    if args.log_json:
        root = logging.getLogger()
        for h in root.handlers:
            h.setFormatter(JsonFormatter())
        if not root.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
    from edge import malloc
    from edge.daemon import Daemon
    from edge.native_stderr import NativeStderrRedactor, native_debug_vars

    malloc.limit_arenas(1)  # before any thread starts (the redactor's too): see edge.malloc
    with contextlib.ExitStack() as stack:
        if asked := native_debug_vars():  # OpenCV/ffmpeg would print source URLs whole
            stack.enter_context(NativeStderrRedactor())
            logging.getLogger("edge.daemon").info(
                "%s set: OpenCV/ffmpeg debug output passes through the redactor", ", ".join(asked)
            )
        daemon = Daemon(args.config)
        daemon.install_signals()
        return daemon.run()
