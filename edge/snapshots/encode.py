"""From a frame and a normalized box to bounded JPEGs: the full frame and a crop.

Pure functions over numpy images (OpenCV for resizing and JPEG), run on the snapshot
encoder's thread (``edge.snapshots.encoder``), never on capture or inference.

- Downsizing uses ``INTER_AREA`` (no aliasing) and never enlarges.
- ``fit_jpeg`` keeps a JPEG under ``max_bytes``: the configured quality first, then
  lower qualities, then smaller sizes; ``None`` when even the smallest does not fit.
  The ``snapshot`` command (``edge.daemon.control``) uses it too.
- A crop is the box grown by ``padding`` × its size on each side, clipped to the frame;
  the box it returns is normalized to the crop, as ``Snapshot.box`` is to its JPEG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.snapshots import Box
from edge.sources.base import Image

# qualities tried below the configured one before the image is made smaller
FALLBACK_QUALITIES = (75, 60, 45, 30, 20)
SHRINK = 0.75  # each smaller size: this fraction of the last one's sides
MIN_SIDE = 16  # no JPEG is made smaller than this on its longest side

_TO_BGR = {1: "COLOR_GRAY2BGR", 4: "COLOR_BGRA2BGR"}  # cv2 constants, by name


@dataclass(frozen=True, slots=True)
class Jpeg:
    data: bytes
    width: int
    height: int
    quality: int  # what it was encoded at (below the configured one: it had to shrink)


def as_bgr(image: Image) -> Image:
    """Grey and BGRA frames as BGR (the pipeline converts them already; a job may not)."""
    import cv2  # here, not at import: an audio-only daemon never loads OpenCV

    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    channels = image.shape[2]
    if channels == 3:
        return image
    name = _TO_BGR.get(channels)
    if name is None:
        raise ValueError(f"image has {channels} channels; expected 1, 3 or 4")
    return np.asarray(cv2.cvtColor(image, getattr(cv2, name)), dtype=np.uint8)


def downsize(image: Image, max_dim: int) -> Image:
    """``image`` with its longest side at most ``max_dim`` (aspect kept, never enlarged)."""
    import cv2

    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_dim:
        return image
    scale = max_dim / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _encode(image: Image, quality: int) -> bytes | None:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return bytes(buf.tobytes()) if ok else None


def fit_jpeg(image: Image, max_dim: int, quality: int, max_bytes: int) -> Jpeg | None:
    """The largest, best JPEG of ``image`` within ``max_dim`` and ``max_bytes``, or None.

    Every quality is tried at the first size; each smaller size only at the lowest
    (a smaller picture is the last resort, and each try costs an encode)."""
    img = downsize(as_bgr(image), max_dim)
    tries = (quality, *(q for q in FALLBACK_QUALITIES if q < quality))
    while True:
        h, w = img.shape[:2]
        for q in tries:
            data = _encode(img, q)
            if data is None:
                raise ValueError(f"cv2.imencode refused a {w}x{h} image")
            if len(data) <= max_bytes:
                return Jpeg(data, w, h, q)
        if max(h, w) <= MIN_SIDE:
            return None
        img = downsize(img, max(MIN_SIDE, int(max(h, w) * SHRINK)))
        tries = tries[-1:]


def crop_region(box: Box, width: int, height: int, padding: float) -> tuple[int, int, int, int]:
    """Pixel bounds ``x1, y1, x2, y2`` (x2, y2 exclusive) of the box grown by ``padding`` ×
    its size on each side, clipped to the frame; at least one pixel each way."""
    x1, y1, x2, y2 = box
    bw, bh = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
    eps = 1e-6  # 0.1 + 0.05 is 0.15000000000000002: no pixel for float noise
    px1 = math.floor(max(0.0, x1 - padding * bw) * width + eps)
    py1 = math.floor(max(0.0, y1 - padding * bh) * height + eps)
    px2 = math.ceil(min(1.0, x2 + padding * bw) * width - eps)
    py2 = math.ceil(min(1.0, y2 + padding * bh) * height - eps)
    px1, py1 = min(max(px1, 0), width - 1), min(max(py1, 0), height - 1)
    px2, py2 = max(min(px2, width), px1 + 1), max(min(py2, height), py1 + 1)
    return px1, py1, px2, py2


def box_in_crop(box: Box, region: tuple[int, int, int, int], width: int, height: int) -> Box:
    """``box`` (normalized to the frame) normalized to the crop ``region``, clipped to it."""
    cx1, cy1, cx2, cy2 = region
    cw, ch = cx2 - cx1, cy2 - cy1

    def nx(v: float) -> float:
        return min(max((v * width - cx1) / cw, 0.0), 1.0)

    def ny(v: float) -> float:
        return min(max((v * height - cy1) / ch, 0.0), 1.0)

    return nx(box[0]), ny(box[1]), nx(box[2]), ny(box[3])


def crop(image: Image, box: Box, padding: float) -> tuple[Image, Box]:
    """The crop around ``box`` and the box normalized to it."""
    h, w = image.shape[:2]
    region = crop_region(box, w, h, padding)
    x1, y1, x2, y2 = region
    return image[y1:y2, x1:x2], box_in_crop(box, region, w, h)
