"""``DeviceStats``: the daemon's figures, the one contract between the daemon and telemetry.

``DeviceControl.stats()`` returns it; ``cloud_sync.telemetry`` turns it into
``TelemetryV1`` field by field (no shape guessing), the health endpoint shows
``to_json()``. Frozen: a snapshot taken at one moment, safe to hand to another thread.

Video and audio streams are kept apart by ``kind``: for a video stream the rates
and counters count frames, for an audio stream they count chunks (``chunk_ms`` long).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

StreamKind = Literal["video", "audio"]
ModelSource = Literal["ota", "config"]  # a signed over-the-air update, or the config's model


@dataclass(frozen=True, slots=True)
class StreamStats:
    kind: StreamKind  # video: frames; audio: chunks
    live: bool  # camera / url / mic, as opposed to a file
    fps_in: float  # frames (chunks) captured per second, last 5 s
    fps_processed: float  # frames (chunks) through the detectors per second, last 5 s
    frames_in: int = 0
    processed: int = 0
    dropped: int = 0  # latest-frame policy and fps limit
    gated: int = 0  # skipped by the motion gate
    skipped: int = 0  # unusable frames, and frames a crashed pipeline thread was holding
    converted: int = 0
    reconnects: int = 0
    restarts: int = 0  # pipeline threads (capture, infer, post) restarted after a crash
    queue_depth: Mapping[str, int] = field(default_factory=dict)  # "capture", "post"
    events: Mapping[str, int] = field(default_factory=dict)  # per phase
    zones: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # zone → label → now
    lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # line → in/out → n
    stage_ms: Mapping[str, float] = field(default_factory=dict)  # moving averages
    ended: bool = False
    error: str | None = None  # why the stream ended, if it ended badly


@dataclass(frozen=True, slots=True)
class DetectorStats:
    """One configured detector (``[detectors.<name>]``) over every stream that runs it."""

    model: str
    version: str
    sha256: str
    inference_ms: Mapping[str, float] = field(default_factory=dict)  # per stream, moving avg
    calls: int = 0  # over all streams
    # what the runtime really runs on (edge.runtime AcceleratorInfo.to_json()); None: unknown
    accelerator: dict[str, object] | None = None
    source: ModelSource = "config"  # where the running model came from (the OTA record)
    counter: int = 0  # the last signed update counter accepted for it (0: none ever)

    @property
    def mean_inference_ms(self) -> float:
        """The mean over streams (0 before the first call)."""
        values = list(self.inference_ms.values())
        return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True, slots=True)
class SinkStats:
    """One configured sink: how often it failed and how many events it lost."""

    failures: int = 0
    events_lost: int = 0
    snapshots_lost: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    """Event snapshots over the process's life (``edge.snapshots``; counters only grow)."""

    taken: int = 0  # JPEGs handed to the sinks
    # JPEGs not taken, by why: queue_full, too_big, encode_error, no_frame, held_full,
    # stopped (the daemon stopped or reloaded before they were encoded, or their event
    # never went out)
    dropped: Mapping[str, int] = field(default_factory=dict)
    encode_ms: float = 0.0  # median time to encode one event's set (frame + crop), last 256
    queue_depth: int = 0  # encode jobs waiting now


@dataclass(frozen=True, slots=True)
class DeviceStats:
    device_id: str
    boot_id: str
    uptime_s: float
    events: int = 0  # emitted since boot
    reloads: int = 0
    streams: Mapping[str, StreamStats] = field(default_factory=dict)
    detectors: Mapping[str, DetectorStats] = field(default_factory=dict)
    sinks: Mapping[str, SinkStats] = field(default_factory=dict)  # sink name -> figures
    snapshots: SnapshotStats = field(default_factory=SnapshotStats)
    # the OTA record cannot be read: the config's models run and model updates are refused
    ota_error: str | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)
