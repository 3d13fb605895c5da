"""The device config: identity, streams, detectors, tracking, sinks, health, snapshots, sync.

``DeviceConfig`` is the whole file; ``edge.config.load`` reads and validates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import Section
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.sinks import MqttSinkConfig, SinkConfig, StdoutSinkConfig
from edge.config.snapshots import SnapshotsConfig
from edge.config.streams import StreamConfig
from edge.config.sync import SyncConfig
from edge.errors import ProfileError
from edge.profiles import get_profile
from edge.wire import DeviceId


class DetectorConfig(Section):
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
    label_thresholds: dict[str, float] = Field(
        default_factory=dict,
        title="Label thresholds",
        description="per-label score thresholds over the manifest's, e.g. {person = 0.4}",
    )
    labels: list[str] | None = Field(
        default=None,
        title="Labels",
        description="keep only detections with these labels (default: all; [] keeps none)",
    )
    exclude_labels: list[str] = Field(
        default_factory=list, title="Exclude labels", description="drop detections with these"
    )
    min_area: float = Field(
        default=0.0, ge=0, le=1, title="Min area", description="drop smaller boxes (image = 1)"
    )
    max_area: float = Field(
        default=1.0, gt=0, le=1, title="Max area", description="drop larger boxes (image = 1)"
    )

    @model_validator(mode="after")
    def _filters(self) -> DetectorConfig:
        for name, v in self.label_thresholds.items():
            if not 0.0 < v < 1.0:
                raise ValueError(f"label_thresholds.{name}: lies between 0 and 1, got {v}")
        if self.min_area > self.max_area:
            raise ValueError(f"min_area {self.min_area} is above max_area {self.max_area}")
        both = sorted(set(self.labels or ()) & set(self.exclude_labels))
        if both:
            raise ValueError(f"labels and exclude_labels both name {both}")
        return self


class TrackingConfig(Section):
    kind: Literal["bytetrack", "iou"] = Field(
        default="bytetrack",
        title="Tracker",
        description="bytetrack: Kalman-predicted boxes, high- then low-score matching; "
        "iou: greedy IoU with the last box",
    )
    iou_threshold: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        title="IoU match",
        description="overlap that continues a track (bytetrack: with its predicted box)",
    )
    high_score: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        title="High score",
        description="bytetrack: boxes scoring this or more are matched first and may start a track",
    )
    low_score: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        title="Low score",
        description="bytetrack: boxes from this up to high_score only continue a track "
        "(set the detector's threshold this low to send them)",
    )
    low_iou_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        title="Low-score IoU match",
        description="bytetrack: overlap a low-score box needs to continue a track",
    )
    min_hits: int = Field(
        default=3,
        ge=1,
        title="Start after",
        description="frames a detection must persist to start an event",
    )
    max_missing: int = Field(
        default=5,
        ge=1,
        title="End after",
        description="frames without it that end the event (bytetrack: until then the "
        "track coasts on its prediction and can be re-found)",
    )
    update_interval_s: float = Field(
        default=1.0,
        gt=0,
        title="Update interval",
        description="a moving track is updated every this (a still one is not)",
    )
    update_still_move: float = Field(
        default=0.1,
        gt=0,
        title="Still box",
        description="a track whose smoothed box centre stays within this fraction of its "
        "size (sqrt(w·h)) of the last sent one, and its size within this fraction, is still: "
        "no periodic updates (the box jitter of a parked car)",
    )
    update_score_delta: float = Field(
        default=0.1,
        gt=0,
        title="Score change",
        description="a (smoothed) score change this big allows an update sooner",
    )
    update_iou_below: float = Field(
        default=0.7,
        gt=0,
        lt=1,
        title="Box change",
        description="(smoothed) box IoU with the last sent below this allows an update sooner",
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

    @model_validator(mode="after")
    def _scores(self) -> TrackingConfig:
        if self.low_score >= self.high_score:
            raise ValueError(
                f"low_score ({self.low_score}) must be below high_score ({self.high_score}): "
                "lower low_score or raise high_score"
            )
        return self


class HealthConfig(Section):
    enabled: bool = Field(default=True, title="Enabled", description="serve /healthz and /metrics")
    host: str = Field(
        default="127.0.0.1", title="Host", description="listen address (keep it local)"
    )
    port: int = Field(default=9480, ge=0, lt=65536, title="Port", description="0: any free port")


def _default_sinks() -> list[SinkConfig]:
    return [StdoutSinkConfig(type="stdout")]


class DeviceConfig(Section):
    device_id: DeviceId = Field(
        title="Device id",
        description="unique per device; one MQTT topic level: letters, digits, `_.-`",
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
        default_factory=_default_sinks,
        title="Sinks",
        description="[[sinks]]: each table's `type` picks its keys (below)",
    )
    health: HealthConfig = Field(default_factory=HealthConfig, title="Health listener")
    snapshots: SnapshotsConfig = Field(
        default_factory=SnapshotsConfig, title="Snapshots", description="JPEGs of vision events"
    )
    sync: SyncConfig | None = Field(default=None, title="Sync", description="MQTT to the hub")
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig,
        title="Home Assistant",
        description="MQTT discovery entities (off by default); `homeassistant = true` "
        "turns it on with the defaults",
    )

    @field_validator("homeassistant", mode="before")
    @classmethod
    def _ha_shorthand(cls, value: object) -> object:
        """``homeassistant = true`` is ``[homeassistant] enabled = true``: one line."""
        if isinstance(value, bool):
            return {"enabled": value}
        if not isinstance(value, dict | HomeAssistantConfig):
            raise ValueError(f"true, false or a [homeassistant] table, got {value!r}")
        return value

    def reference_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """What the tables say about each other, each problem at the key that is wrong."""
        out: list[tuple[tuple[str, ...], str]] = []
        seen: set[str] = set()
        for i, s in enumerate(self.streams):
            if s.name in seen:
                out.append(
                    (("streams", str(i), "name"), f"stream names must be unique: {s.name!r}")
                )
            seen.add(s.name)
            for d in s.detectors:
                if d not in self.detectors:
                    out.append(
                        (
                            ("streams", str(i), "detectors"),
                            f"stream {s.name!r} names detector {d!r}, which has no "
                            f"[detectors.{d}] table; defined: {sorted(self.detectors)}",
                        )
                    )
        if self.profile is not None:
            try:
                get_profile(self.profile)
            except ProfileError as exc:
                out.append((("profile",), str(exc)))
        for i, sink in enumerate(self.sinks):
            if isinstance(sink, MqttSinkConfig) and self.sync is None:
                out.append(
                    (
                        ("sinks", str(i), "type"),
                        "an mqtt sink needs a [sync] section (see examples/configs/)",
                    )
                )
        if self.homeassistant.enabled and not any(
            isinstance(s, MqttSinkConfig) for s in self.sinks
        ):
            out.append(
                (
                    ("homeassistant",),
                    "Home Assistant entities go through the mqtt sink: add [[sinks]] "
                    'type = "mqtt" and a [sync] section, or set homeassistant = false',
                )
            )
        return out

    @model_validator(mode="after")
    def _refs(self, info: ValidationInfo) -> DeviceConfig:
        problems = self.reference_problems()
        collect = info.context.get(COLLECT_REFERENCES) if info.context else None
        if isinstance(collect, list):  # parse_config: it reports each at its line
            collect.extend(problems)
        elif problems:
            raise ValueError(problems[0][1])
        return self


COLLECT_REFERENCES = "edgewise.config.reference_problems"
"""A validation-context key: a list there receives ``(loc, message)`` for each reference
problem instead of the first one being raised (``edge.config.load.parse_config``)."""
