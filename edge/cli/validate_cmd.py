"""``edge validate-config FILE``: every problem as ``file:line key: message``; non-zero if any.

``edge.config`` and ``edge.sinks`` (pydantic models, ~60 ms) are imported when the command
runs: ``edge.cli.main`` imports every command module to build its parser, and ``edge detect``
must not pay for them (bench/bench_cold_start.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import exit_codes
from edge.cli.output import emit_json
from edge.errors import ConfigError, EdgeError
from edge.redact import redact

if TYPE_CHECKING:
    from edge.config import DeviceConfig


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "validate-config",
        help="check a device config: keys, types, detectors, sinks, sources",
        description="Prints each problem as FILE:LINE KEY: MESSAGE and exits 2 if there are any.",
    )
    p.add_argument("config", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help='{"ok": bool, "problems": [...]} on stdout')
    p.add_argument(
        "--no-models", action="store_true", help="skip resolving models (offline, not pulled yet)"
    )
    p.set_defaults(handler=run)


def deep_problems(path: Path, cfg: DeviceConfig, check_models: bool) -> list[str]:
    """What the schema cannot see: models that do not resolve, sinks whose extra is not
    installed, missing files."""
    from edge.config import key_lines
    from edge.models.resolve import resolve
    from edge.pipeline.filters import check_names
    from edge.sinks import sink_factory

    lines = key_lines(path.read_text(encoding="utf-8"))

    def at(*loc: str) -> str:
        from edge.config import find_line

        return f"{path}:{find_line(lines, tuple(loc))} {'.'.join(loc)}"

    out: list[str] = []
    for name, d in cfg.detectors.items():
        is_path = Path(d.model).suffix.lower() in (".json", ".toml") or "/" in d.model
        if not check_models and not is_path:
            continue
        try:
            model = resolve(d.model, cfg.models_home, pull_missing=check_models)
        except EdgeError as exc:
            out.append(f"{at('detectors', name, 'model')}: {exc}")
            continue
        label_keys = {"labels": d.labels or [], "exclude_labels": d.exclude_labels,
                 "label_thresholds": list(d.label_thresholds)}  # fmt: skip
        for key, names in label_keys.items():
            try:  # label names the model has (edge.pipeline.filters)
                check_names(f"detectors.{name}.{key}", names, model.manifest)
            except ConfigError as exc:
                out.append(f"{at('detectors', name, key)}: {str(exc).split(': ', 1)[1]}")
    for i, sink in enumerate(cfg.sinks):
        try:  # imports the sink's module: a missing extra (paho for mqtt) is a problem here
            sink_factory(sink.type)
        except ConfigError as exc:
            out.append(f"{at('sinks', str(i), 'type')}: {str(exc).removeprefix('sinks: ')}")
    sync = cfg.sync
    if sync is not None:  # files the publisher reads when it connects
        named = [("password_file", sync.password_file)]
        if sync.tls is not None:
            named += [
                (f"tls.{k}", getattr(sync.tls, k)) for k in ("ca_file", "cert_file", "key_file")
            ]
        for key, file in named:
            if file is not None and not file.expanduser().is_file():
                out.append(f"{at('sync', *key.split('.'))}: {file} not found")
    for i, s in enumerate(cfg.streams):
        src = Path(s.source).expanduser()
        if s.source_type in ("video", "wav") and not src.is_file():
            out.append(f"{at('streams', str(i), 'source')}: {src} not found")
        if s.source_type == "images" and not src.is_dir():
            out.append(f"{at('streams', str(i), 'source')}: {src} is not a folder")
    return out


def run(args: argparse.Namespace) -> int:
    from edge.config import InvalidConfigError, load_config

    path: Path = args.config
    try:
        cfg = load_config(path)
        problems = deep_problems(path, cfg, not args.no_models)
    except InvalidConfigError as exc:
        problems = exc.problems
    except ConfigError as exc:
        problems = [str(exc)]
    problems = [redact(p) for p in problems]  # a source URL in a message keeps no password
    if args.json:
        emit_json({"config": str(path), "ok": not problems, "problems": problems})
    else:
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"{path}: ok")
    return exit_codes.USAGE if problems else exit_codes.OK
