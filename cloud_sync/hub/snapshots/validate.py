"""One snapshot message → a checked ``(header, jpeg)`` or a counted refusal.

Pure: no I/O. The stages are those of ``cloud_sync.schema.decode_snapshot`` (kept in
step with it), each with its own reason so an operator sees *what* devices get wrong;
on top: the JPEG's own size must be the header's, and the header's device must be the
topic's (the broker's ACL vouches for the topic, never for the payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import ValidationError

from cloud_sync.hub.snapshots.jpeg import JpegError, jpeg_size
from cloud_sync.schema import SnapshotHeaderV1
from edge.wire import MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_HEADER, SNAPSHOT_MAGIC

MAX_MESSAGE = len(SNAPSHOT_MAGIC) + 2 + MAX_SNAPSHOT_HEADER + MAX_SNAPSHOT_BYTES
"""The largest snapshot message there can be; past this it is refused unread."""

SnapReason = Literal[
    "too_large",
    "not_snapshot",
    "bad_header",
    "not_jpeg",
    "dims_mismatch",
    "device_mismatch",
    "unknown_event",
    "event_device_mismatch",
    "pending_full",
    "store_failed",
]
SNAP_REASONS: tuple[SnapReason, ...] = get_args(SnapReason)


@dataclass(frozen=True, slots=True)
class SnapRejected:
    reason: SnapReason
    detail: str


@dataclass(frozen=True, slots=True)
class SnapAccepted:
    header: SnapshotHeaderV1
    jpeg: bytes


def check(topic_device: str, payload: bytes) -> SnapAccepted | SnapRejected:
    """Validate one message from ``<prefix>/<topic_device>/snapshots``; never raises."""
    if len(payload) > MAX_MESSAGE:
        return SnapRejected("too_large", f"{len(payload)} bytes > {MAX_MESSAGE}")
    if len(payload) < 6 or not payload.startswith(SNAPSHOT_MAGIC):
        return SnapRejected("not_snapshot", "no EWS1 magic")
    n = int.from_bytes(payload[4:6], "big")
    if n > MAX_SNAPSHOT_HEADER or 6 + n > len(payload):
        return SnapRejected("bad_header", f"header length {n} is out of bounds")
    try:
        header = SnapshotHeaderV1.model_validate_json(payload[6 : 6 + n])
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return SnapRejected("bad_header", f"{loc}: {first['msg']}"[:200])
    jpeg = payload[6 + n :]
    if len(jpeg) != header.bytes:
        return SnapRejected("bad_header", f"header says {header.bytes} bytes, got {len(jpeg)}")
    if header.device_id != topic_device:
        return SnapRejected(
            "device_mismatch", f"header device_id {header.device_id!r} != topic {topic_device!r}"
        )
    try:
        w, h = jpeg_size(jpeg)
    except JpegError as e:
        return SnapRejected("not_jpeg", str(e))
    if (w, h) != (header.width, header.height):
        return SnapRejected(
            "dims_mismatch", f"JPEG is {w}x{h}, header says {header.width}x{header.height}"
        )
    return SnapAccepted(header, jpeg)
