"""Reading a device config: TOML → ``DeviceConfig``, each problem as ``file:line key: message``.

``parse_config`` validates text: TOML parse (``parse_toml``, the raw values), then
``${NAME}`` expansion from the environment (``edge.config.env``), then validation.
``load_config`` reads a file (``read_config_text``) and then ``resolve_paths`` makes the
relative paths in it relative to the config's folder. The text itself is never changed:
a caller that must tell a value written as ``${NAME}`` from a literal one (the remote
``config`` command) compares ``parse_toml`` of the texts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from edge.compat import tomllib
from edge.config.device import COLLECT_REFERENCES, DeviceConfig
from edge.config.env import expand_env
from edge.config.keys import allowed_keys
from edge.config.lines import find_line, key_lines
from edge.config.sinks import SINK_TYPES, JsonlSinkConfig
from edge.errors import ConfigError
from edge.suggest import did_you_mean
from edge.wire import CLIENT_ID_PATTERN, DEVICE_ID_PATTERN, NAME_PATTERN

_PATTERN_HELP = {
    f"^{DEVICE_ID_PATTERN}$": "use letters, digits and `_.-`, starting with a letter or digit",
    f"^{NAME_PATTERN}$": "use letters, digits and `_.-`, starting with a letter or digit",
    f"^{CLIENT_ID_PATTERN}$": "use letters, digits and `_.:-`, starting with a letter or digit",
}


class InvalidConfigError(ConfigError):
    """A config with one or more problems, each ``file:line key: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


def _input_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str, ...]:
    """``loc`` as the user wrote it: drop the tag a discriminated union inserts.

    pydantic reports ``sinks.0.jsonl.path``; the file has ``sinks.0.path`` (the
    ``jsonl`` is the table's own ``type`` value, not a key)."""
    out: list[str] = []
    node = data
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and i < len(loc) - 1
            and part not in node
            and node.get("type") == part
        ):
            continue
        out.append(str(part))
        if isinstance(node, dict):
            node = node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _message(err: ErrorDetails) -> tuple[str, str | None]:
    """The message for one error, and a key to report it at instead (a missing tag)."""
    kind = err["type"]
    if kind == "extra_forbidden":
        loc = tuple(err["loc"])
        hint = did_you_mean(str(loc[-1]), allowed_keys(DeviceConfig, loc)) if loc else ""
        return f"unknown key{hint or '; check its spelling (see examples/configs/)'}", None
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag", "?")
        return f"unknown sink type {tag!r}; use one of {', '.join(SINK_TYPES)}", "type"
    if kind == "union_tag_not_found":
        return f"a sink needs `type`, one of {', '.join(SINK_TYPES)}", None
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        if pattern in _PATTERN_HELP:
            return f"{_PATTERN_HELP[pattern]} (pattern {pattern})", None
    return err["msg"].removeprefix("Value error, "), None


def format_problems(origin: str, text: str, exc: ValidationError, data: Any = None) -> list[str]:
    lines = key_lines(text)
    out = []
    for err in exc.errors():
        loc = _input_loc(data, tuple(err["loc"]))
        msg, at = _message(err)
        if at is not None:
            loc = (*loc, at)
        key = ".".join(loc) or "(top level)"
        out.append(f"{origin}:{find_line(lines, loc)} {key}: {msg}")
    return out


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """The TOML as written (``${NAME}`` not expanded); a syntax error as ``file:line``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InvalidConfigError([f"{origin}:{m.group(1) if m else 1} (toml): {exc}"]) from None


def parse_config(text: str, origin: str, environ: Mapping[str, str] | None = None) -> DeviceConfig:
    """Parse, expand ``${NAME}`` from ``environ`` (default: ``os.environ``), validate."""
    data, unset = expand_env(parse_toml(text, origin), os.environ if environ is None else environ)
    if unset:
        lines = key_lines(text)
        raise InvalidConfigError(
            [f"{origin}:{find_line(lines, loc)} {'.'.join(loc)}: {msg}" for loc, msg in unset]
        )
    references: list[tuple[tuple[str, ...], str]] = []
    try:
        cfg = DeviceConfig.model_validate(data, context={COLLECT_REFERENCES: references})
    except ValidationError as exc:
        raise InvalidConfigError(format_problems(origin, text, exc, data)) from None
    if references:
        lines = key_lines(text)
        raise InvalidConfigError(
            [f"{origin}:{find_line(lines, loc)} {'.'.join(loc)}: {msg}" for loc, msg in references]
        )
    return cfg


def read_config_text(path: Path) -> str:
    """The config file's text, as written; ``ConfigError`` naming the file if unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config is not UTF-8 text ({exc.reason})") from None


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> DeviceConfig:
    """Read and validate; relative file paths in sources and sinks are relative to the config.
    ``environ``: where ``${NAME}`` comes from (default: ``os.environ``)."""
    text = read_config_text(path)
    return resolve_paths(parse_config(text, str(path), environ), path.parent)


def _under(base: Path, path: Path) -> Path:
    return path if path.expanduser().is_absolute() else base / path


def resolve_paths(cfg: DeviceConfig, base: Path) -> DeviceConfig:
    """Make every relative file path relative to ``base`` (the config's folder), so the
    daemon reads the same files whatever directory it was started in. The outbox path is
    the exception: relative to the data dir, where the device keeps its state."""
    for s in cfg.streams:
        if (
            s.source_type in ("video", "images", "wav")
            and not Path(s.source).expanduser().is_absolute()
        ):
            s.source = str(base / s.source)
    for sink in cfg.sinks:
        if isinstance(sink, JsonlSinkConfig):
            sink.path = _under(base, sink.path)
    for d in cfg.detectors.values():
        p = Path(d.model)
        is_path = p.suffix.lower() in (".json", ".toml") or "/" in d.model
        if is_path and not p.expanduser().is_absolute():
            d.model = str(base / p)
    if cfg.sync is not None:
        if cfg.sync.password_file is not None:
            cfg.sync.password_file = _under(base, cfg.sync.password_file)
        tls = cfg.sync.tls
        if tls is not None:
            tls.ca_file = _under(base, tls.ca_file) if tls.ca_file else None
            tls.cert_file = _under(base, tls.cert_file) if tls.cert_file else None
            tls.key_file = _under(base, tls.key_file) if tls.key_file else None
    cfg.data_dir = cfg.data_dir.expanduser()
    return cfg
