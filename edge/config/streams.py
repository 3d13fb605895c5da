"""``[[streams]]``: what to read (camera, file, URL, folder, WAV, microphone) and how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section
from edge.config.regions import LineConfig, ZoneConfig, legacy_zones
from edge.redact import redact
from edge.wire import MAX_REGIONS, StreamName

SourceType = Literal["camera", "video", "url", "images", "wav", "mic"]
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg", ".m4v"})
AUDIO_SUFFIXES = frozenset({".wav", ".wave"})
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class MotionGateConfig(Section):
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


CpuList = Annotated[
    list[Annotated[int, Field(ge=0, le=4095)]], Field(min_length=1, max_length=1024)
]


class StreamCpus(Section):
    """Which CPUs each of a stream's threads may run on (Linux ``sched_setaffinity``).

    Off by default: the OS scheduler is right for most mixes of streams. On a 2-core
    board running one camera, ``infer = [0]`` with ``capture = [1]`` and ``post = [1]``
    keeps inference on its core, its caches warm, and decoding off it
    (bench/bench_pipeline.py measures both)."""

    capture: CpuList | None = Field(
        default=None, title="Capture", description="CPUs for reading and decoding the source"
    )
    infer: CpuList | None = Field(
        default=None, title="Infer", description="CPUs for pre-processing and the model"
    )
    post: CpuList | None = Field(
        default=None, title="Post", description="CPUs for tracking and events"
    )

    @field_validator("capture", "infer", "post")
    @classmethod
    def _no_repeats(cls, cpus: list[int] | None) -> list[int] | None:
        if cpus is not None and len(set(cpus)) != len(cpus):
            raise ValueError(f"CPU listed twice in {cpus}")
        return cpus

    def parts(self) -> dict[str, set[int]]:
        """Each pinned part → its CPUs; parts left unset are absent."""
        chosen = {"capture": self.capture, "infer": self.infer, "post": self.post}
        return {part: set(cpus) for part, cpus in chosen.items() if cpus is not None}


class StreamConfig(Section):
    name: StreamName = Field(title="Name", description="stream id: letters, digits, `_.-`")
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
    zones: list[ZoneConfig] = Field(
        default_factory=list,
        max_length=MAX_REGIONS,
        title="Zones",
        description="named polygons ([[streams.zones]]): events say which an object is in, "
        "and an object entering or leaving one makes an enter / exit event",
    )
    zone_filter: bool = Field(
        default=False,
        title="Zone filter",
        description="only objects whose anchor is in some zone are tracked and make events "
        "(default: zones annotate, nothing is filtered; the deprecated unnamed form: true)",
    )
    lines: list[LineConfig] = Field(
        default_factory=list,
        max_length=MAX_REGIONS,
        title="Lines",
        description="named lines ([[streams.lines]]): crossings make cross events and are "
        "counted in and out",
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
    cpus: StreamCpus | None = Field(
        default=None,
        title="CPU pinning",
        description="pin this stream's threads to CPUs (Linux), e.g. {infer = [0], capture = "
        "[1], post = [1]}; default: the OS schedules them",
    )

    @field_validator("zones", "lines")
    @classmethod
    def _unique(cls, items: list[ZoneConfig] | list[LineConfig]) -> object:
        names = [i.name for i in items]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"the name {dup!r} is used twice; give each one its own name")
        return items

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        return legacy_zones(data)

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
        both = sorted({z.name for z in self.zones} & {ln.name for ln in self.lines})
        if both:
            raise ValueError(
                f"zones and lines need distinct names; {both[0]!r} names a zone and a line"
            )
        if self.zone_filter and not self.zones:
            raise ValueError("zone_filter = true needs at least one zone")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def source_type(self) -> SourceType:
        assert self.type is not None  # set by the validator
        return self.type

    @property
    def display_source(self) -> str:
        """``source`` as logs, ``/healthz`` and errors show it: a URL's password masked."""
        return redact(self.source)

    @property
    def is_audio(self) -> bool:
        return self.source_type in ("wav", "mic")

    @property
    def is_live(self) -> bool:
        return self.source_type in ("camera", "url", "mic")


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
        f"cannot tell the kind of source {redact(source)!r}; "
        "set type = camera|video|url|images|wav|mic"
    )
