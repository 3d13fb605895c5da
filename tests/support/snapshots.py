"""Snapshot test material: real cv2-encoded JPEGs of real photos, the events of one
track that name them, and the binary snapshot messages (``encode_snapshot``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import cv2

from cloud_sync.schema import EventBatchV1, EventV1, ModelRefV1, SnapshotHeaderV1, encode_snapshot
from edge.compat import UTC
from tests.fixtures.coco_photos import photo


def jpeg(
    name: str = "astronaut", width: int = 320, height: int = 240, *, quality: int = 80,
    progressive: bool = False,
) -> bytes:  # fmt: skip
    """A real photo resized to ``width`` x ``height`` and encoded by OpenCV."""
    img = cv2.resize(photo(name), (width, height), interpolation=cv2.INTER_AREA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    if progressive:
        params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return bytes(buf.tobytes())


def track(
    device: str, boot: str, track_id: int, seq0: int = 0, stream: str = "cam0"
) -> tuple[EventV1, EventV1]:
    """A track's start event (with start / start_crop) and its end event (best / best_crop)."""
    t = datetime.now(UTC)

    def ev(seq: int, phase: str, kinds: list[str]) -> EventV1:
        return EventV1.model_validate(
            {"id": str(uuid.uuid4()), "device_id": device, "boot_id": boot, "seq": seq,
             "stream": stream, "kind": "vision", "label": "person", "score": 0.9,
             "phase": phase, "started_at": t, "ts": t, "box": [0.1, 0.2, 0.5, 0.8],
             "track_id": track_id, "latency_ms": 5.0, "snapshots": kinds,
             "model": ModelRefV1(name="nanodet-m", version="1", sha256="abcdef12")}
        )  # fmt: skip

    return ev(seq0, "start", ["start", "start_crop"]), ev(seq0 + 1, "end", ["best", "best_crop"])


def batch(*events: EventV1) -> bytes:
    b = EventBatchV1(device_id=events[0].device_id, boot_id=events[0].boot_id, events=list(events))
    return b.model_dump_json().encode()


def header(
    device: str, event_id: str, kind: str, data: bytes, width: int = 320, height: int = 240,
    **over: Any,
) -> SnapshotHeaderV1:  # fmt: skip
    doc: dict[str, Any] = {
        "device_id": device, "event_id": event_id, "stream": "cam0", "kind": kind,
        "ts": datetime.now(UTC), "width": width, "height": height, "bytes": len(data),
        "box": [0.1, 0.2, 0.5, 0.8],
    }  # fmt: skip
    return SnapshotHeaderV1.model_validate(doc | over)


def message(device: str, event_id: str, kind: str, data: bytes, **over: Any) -> bytes:
    """A well-formed snapshot message (``encode_snapshot``) for ``data``."""
    return encode_snapshot(header(device, event_id, kind, data, **over), data)


def raw_message(head: bytes, data: bytes) -> bytes:
    """EWS1 + length + ``head`` as given + ``data``: for headers ``encode_snapshot`` refuses."""
    return b"EWS1" + len(head).to_bytes(2, "big") + head + data
