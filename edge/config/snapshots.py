"""``[snapshots]``: the JPEGs a vision event carries (``edge.snapshots``).

The defaults suit a Raspberry Pi on a metered link: on the 640×480 demo video a 640 px
frame at quality 70 is ~45-50 kB and a 320 px crop ~15 kB, four per track at most.
Snapshots cost nothing unless a sink takes them (the MQTT sink does; ``jsonl`` and
``stdout`` do not).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from edge.config.base import Section
from edge.wire import MAX_SNAPSHOT_BYTES, SnapshotKind

ALL_KINDS: tuple[SnapshotKind, ...] = ("start", "start_crop", "best", "best_crop")


class SnapshotsConfig(Section):
    enabled: bool = Field(
        default=True,
        strict=True,
        title="Enabled",
        description="take snapshots of vision tracks (only when a sink takes them)",
    )
    kinds: list[SnapshotKind] = Field(
        default_factory=lambda: list(ALL_KINDS),
        max_length=4,
        title="Kinds",
        description="which of start, start_crop (the start frame), best, best_crop (the "
        "best-scoring frame, sent at the track's end) to take",
    )
    max_dim: int = Field(
        default=640, ge=16, le=4096, strict=True, title="Max dim",
        description="longest side of the full-frame JPEG, px (frames are never enlarged)",
    )  # fmt: skip
    crop_max_dim: int = Field(
        default=320, ge=16, le=4096, strict=True, title="Crop max dim",
        description="longest side of the crop JPEG, px",
    )  # fmt: skip
    crop_padding: float = Field(
        default=0.25, ge=0.0, le=4.0, strict=True, title="Crop padding",
        description="margin added on each side of the box, as a fraction of its width/height",
    )  # fmt: skip
    quality: int = Field(
        default=70, ge=10, le=100, strict=True, title="JPEG quality",
        description="first try; lowered (then the size) until a JPEG fits max_bytes",
    )  # fmt: skip
    max_bytes: int = Field(
        default=60_000, ge=2_000, le=MAX_SNAPSHOT_BYTES, strict=True, title="Max bytes",
        description="per JPEG; one that cannot be made to fit is dropped and counted",
    )  # fmt: skip
    queue: int = Field(
        default=16, ge=1, le=1024, strict=True, title="Queue",
        description="pending encode jobs; past that a snapshot is dropped (counted), "
        "capture and inference never wait",
    )  # fmt: skip

    @field_validator("kinds")
    @classmethod
    def _unique(cls, v: list[SnapshotKind]) -> list[SnapshotKind]:
        dup = sorted({k for k in v if v.count(k) > 1})
        if dup:
            raise ValueError(f"kinds lists {dup} more than once; name each kind once")
        return v
