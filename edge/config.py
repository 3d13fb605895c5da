"""The device config (TOML): streams, detectors, tracking, sinks, health listener, sync.

Validated with pydantic, unknown keys rejected. ``load_config`` raises
``ConfigError`` whose ``problems`` are ``file:line key: message`` lines, the line
found by scanning the TOML text for the key (``find_line``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud_sync.config import SyncConfig
from edge.errors import ConfigError, ProfileError
from edge.profiles import get_profile
from edge.wire import DeviceId, StreamName

SourceType = Literal["camera", "video", "url", "images", "wav", "mic"]
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg", ".m4v"})
AUDIO_SUFFIXES = frozenset({".wav", ".wave"})
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MotionGateConfig(_Section):
    enabled: bool = Field(
        default=True, title="Enabled", description="skip inference on static scenes"
    )
    threshold: float = Field(
        default=2.0,
        gt=0,
        title="Threshold",
        description="mean absolute grey change (0-255) of a 64×48 thumbnail that counts as motion",
    )
    max_skip_s: float = Field(
        default=2.0, gt=0, title="Max skip", description="run inference at least this often anyway"
    )


class StreamConfig(_Section):
    name: StreamName = Field(
        title="Name", description="stream id: letters, digits, `_.-`, at most 128 characters"
    )
    source: str = Field(
        min_length=1,
        title="Source",
        description="camera index (0), video file, rtsp/http URL, image folder, WAV file, "
        "or 'mic' / 'mic:DEVICE'",
    )
    type: SourceType | None = Field(
        default=None, title="Source type", description="default: inferred from `source`"
    )
    detectors: list[str] = Field(
        min_length=1, title="Detectors", description="names of [detectors.NAME] tables to run"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        title="Thresholds",
        description="per-detector score threshold for this stream, e.g. {face = 0.7}",
    )
    fps_limit: float | None = Field(
        default=None, gt=0, title="FPS limit", description="process at most this many frames/s"
    )
    resolution: tuple[int, int] | None = Field(
        default=None, title="Resolution", description="[width, height] asked of a camera"
    )
    zones: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        title="Zones",
        description="normalized [x, y] polygons; a detection counts only if its centre is in one",
    )
    motion_gate: MotionGateConfig | None = Field(
        default=None, title="Motion gate", description="skip inference while the scene is static"
    )
    loop: bool = Field(
        default=False, title="Loop", description="file sources: start again at the end"
    )
    realtime: bool = Field(
        default=False,
        title="Real time",
        description="file sources: pace frames at the file's rate (default: as fast as possible)",
    )
    sample_rate: int = Field(
        default=16000, gt=0, title="Sample rate", description="audio sources, Hz"
    )
    chunk_ms: int = Field(
        default=96, gt=0, le=2000, title="Chunk", description="audio chunk length"
    )
    stall_timeout_s: float = Field(
        default=5.0,
        gt=0,
        title="Stall timeout",
        description="live source: restart after this long without a frame",
    )
    reconnect_min_s: float = Field(
        default=0.5, gt=0, title="Reconnect min", description="first backoff"
    )
    reconnect_max_s: float = Field(
        default=10.0, gt=0, title="Reconnect max", description="backoff cap"
    )

    @model_validator(mode="after")
    def _check(self) -> StreamConfig:
        if self.type is None:
            self.type = infer_source_type(self.source)
        for name in self.thresholds:
            if name not in self.detectors:
                raise ValueError(f"thresholds names {name!r}, which this stream does not run")
        for v in self.thresholds.values():
            if not 0.0 < v < 1.0:
                raise ValueError(f"thresholds must lie between 0 and 1, got {v}")
        for zone in self.zones:
            if len(zone) < 3:
                raise ValueError("a zone needs at least 3 points")
            if any(not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) for x, y in zone):
                raise ValueError("zone points are normalized: x and y in [0, 1]")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def source_type(self) -> SourceType:
        assert self.type is not None  # set by the validator
        return self.type

    @property
    def is_audio(self) -> bool:
        return self.source_type in ("wav", "mic")

    @property
    def is_live(self) -> bool:
        return self.source_type in ("camera", "url", "mic")


class DetectorConfig(_Section):
    model: str = Field(
        min_length=1, title="Model", description="zoo name, manifest (.json/.toml) or bundle folder"
    )
    backend: Literal["onnxruntime", "tflite"] | None = Field(
        default=None, title="Backend", description="default: from the model's format"
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        title="Threads",
        description="inference threads (default: the device profile's, else 1)",
    )
    providers: list[str] | None = Field(
        default=None,
        title="Providers",
        description="onnxruntime execution providers or TFLite delegates, in order "
        "(default: the device profile's, where it uses the same runtime)",
    )
    accelerator_strict: bool = Field(
        default=False,
        title="Strict accelerator",
        description="refuse to start when a provider or delegate cannot be used, instead of "
        "falling back to the CPU with a warning",
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        title="Threshold",
        description="score threshold (default: manifest's)",
    )


class TrackingConfig(_Section):
    iou_threshold: float = Field(
        default=0.3, gt=0, lt=1, title="IoU match", description="overlap that continues a track"
    )
    min_hits: int = Field(
        default=3,
        ge=1,
        title="Start after",
        description="frames a detection must persist to start an event",
    )
    max_missing: int = Field(
        default=5, ge=1, title="End after", description="frames without it that end the event"
    )
    update_interval_s: float = Field(
        default=1.0,
        gt=0,
        title="Update interval",
        description="at most one update per track per this",
    )
    update_score_delta: float = Field(
        default=0.1,
        gt=0,
        title="Score change",
        description="a score change this big allows an update sooner",
    )
    update_iou_below: float = Field(
        default=0.7,
        gt=0,
        lt=1,
        title="Box change",
        description="box IoU with the last emitted below this allows an update sooner",
    )
    min_update_gap_s: float = Field(
        default=0.2,
        ge=0,
        title="Min update gap",
        description="never two updates of a track closer than this",
    )
    audio_min_s: float = Field(
        default=0.25,
        ge=0,
        title="Audio min",
        description="an open speech segment starts an event once this long",
    )


class SinkConfig(_Section):
    type: str = Field(
        min_length=1, title="Type", description="a registered sink: jsonl, stdout, mqtt"
    )
    path: Path | None = Field(
        default=None, title="Path", description="jsonl: the file to append to"
    )
    flush_every: int = Field(
        default=1,
        ge=1,
        title="Flush every",
        description="jsonl/stdout: flush after this many events",
    )


class HealthConfig(_Section):
    enabled: bool = Field(default=True, title="Enabled", description="serve /healthz and /metrics")
    host: str = Field(
        default="127.0.0.1", title="Host", description="listen address (keep it local)"
    )
    port: int = Field(default=9480, ge=0, lt=65536, title="Port", description="0: any free port")


class DeviceConfig(_Section):
    device_id: DeviceId = Field(
        title="Device id",
        description="unique per device; one MQTT topic level: letters, digits, `_.-`, "
        "at most 64 characters",
    )
    data_dir: Path = Field(
        default=Path("~/.local/share/edgewise"),
        title="Data dir",
        description="state: outbox, boot id",
    )
    profile: str | None = Field(
        default=None,
        title="Device profile",
        description="a device_profiles/ name (edge doctor names this machine's): default "
        "threads and providers or delegates for the detectors",
    )
    models_home: Path | None = Field(
        default=None, title="Models home", description="model cache (default $EDGEWISE_HOME)"
    )
    streams: list[StreamConfig] = Field(min_length=1, title="Streams", description="[[streams]]")
    detectors: dict[str, DetectorConfig] = Field(
        min_length=1, title="Detectors", description="[detectors.NAME]"
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, title="Tracking and events")
    sinks: list[SinkConfig] = Field(
        default_factory=lambda: [SinkConfig(type="stdout")], title="Sinks", description="[[sinks]]"
    )
    health: HealthConfig = Field(default_factory=HealthConfig, title="Health listener")
    sync: SyncConfig | None = Field(default=None, title="Sync", description="MQTT to the hub")

    @model_validator(mode="after")
    def _refs(self) -> DeviceConfig:
        names = [s.name for s in self.streams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stream names must be unique, repeated: {', '.join(dupes)}")
        for s in self.streams:
            for d in s.detectors:
                if d not in self.detectors:
                    raise ValueError(
                        f"stream {s.name!r} names detector {d!r}, which has no [detectors.{d}] "
                        f"table; defined: {sorted(self.detectors)}"
                    )
        if self.profile is not None:
            try:
                get_profile(self.profile)
            except ProfileError as exc:
                raise ValueError(str(exc)) from None
        for sink in self.sinks:
            if sink.type == "jsonl" and sink.path is None:
                raise ValueError("a jsonl sink needs `path`")
            if sink.type == "mqtt" and self.sync is None:
                raise ValueError("an mqtt sink needs a [sync] section")
        return self


def infer_source_type(source: str) -> SourceType:
    s = source.strip()
    if s.isdigit() or s.startswith("/dev/video"):
        return "camera"
    if s == "mic" or s.startswith("mic:"):
        return "mic"
    if s.lower().startswith(URL_SCHEMES):
        return "url"
    suffix = Path(s).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "wav"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix == "":
        return "images"
    raise ValueError(
        f"cannot tell the kind of source {source!r}; set type = camera|video|url|images|wav|mic"
    )


# -- errors with file:line --------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.\s]+?)\s*=")


def _split_key(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Path → 1-based line of every table header and key (arrays of tables get their index)."""
    lines: dict[tuple[str, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for no, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            path = tuple(_split_key(m.group(2)))
            if m.group(1) == "[[":
                idx = counts.get(path, -1) + 1
                counts[path] = idx
                table = (*path, str(idx))
            else:
                table = path
            lines.setdefault(table, no)
            continue
        k = _KEY.match(line)
        if k and not line.lstrip().startswith("#"):
            lines.setdefault((*table, *_split_key(k.group(1))), no)
    return lines


def find_line(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int:
    """The line of ``loc`` or of its nearest enclosing key; 1 when nothing matches."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def format_problems(origin: str, text: str, exc: ValidationError) -> list[str]:
    lines = key_lines(text)
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling (see examples/configs/)"
        out.append(f"{origin}:{find_line(lines, loc)} {key}: {msg}")
    return out


class InvalidConfigError(ConfigError):
    """A config with one or more problems, each ``file:line key: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


def parse_config(text: str, origin: str) -> DeviceConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InvalidConfigError([f"{origin}:{m.group(1) if m else 1} (toml): {exc}"]) from None
    try:
        return DeviceConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfigError(format_problems(origin, text, exc)) from None


def load_config(path: Path) -> DeviceConfig:
    """Read and validate; relative file paths in sources and sinks are relative to the config."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    return resolve_paths(parse_config(text, str(path)), path.parent)


def resolve_paths(cfg: DeviceConfig, base: Path) -> DeviceConfig:
    for s in cfg.streams:
        if (
            s.source_type in ("video", "images", "wav")
            and not Path(s.source).expanduser().is_absolute()
        ):
            s.source = str(base / s.source)
    for sink in cfg.sinks:
        if sink.path is not None and not sink.path.expanduser().is_absolute():
            sink.path = base / sink.path
    for d in cfg.detectors.values():
        p = Path(d.model)
        is_path = p.suffix.lower() in (".json", ".toml") or "/" in d.model
        if is_path and not p.expanduser().is_absolute():
            d.model = str(base / p)
    cfg.data_dir = cfg.data_dir.expanduser()
    return cfg
