"""Reading images and drawing detections on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.detectors.base import Detection
from edge.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """A BGR uint8 image; grey and BGRA inputs are converted. Errors name the file."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        hint = (
            "it looks like audio; use an audio model such as silero-vad"
            if path.suffix.lower() in AUDIO_SUFFIXES
            else "expected a JPEG, PNG, BMP, WebP or TIFF image"
        )
        raise InputError(f"{path}: not a readable image ({hint})")
    return np.asarray(image, dtype=np.uint8)  # no copy; narrows the type


_COLOURS = [(0, 200, 255), (80, 220, 80), (255, 120, 40), (200, 80, 255), (40, 40, 255)]


def draw_detections(
    image: npt.NDArray[np.uint8], detections: list[Detection]
) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with boxes, polygons, keypoints and ``label score`` drawn."""
    out: npt.NDArray[np.uint8] = image.copy()  # numpy 2.4 types copy() as Any when checked as 3.10
    thick = max(1, round(min(out.shape[:2]) / 300))
    labels: dict[str, int] = {}
    for det in detections:
        colour = _COLOURS[labels.setdefault(det.label, len(labels)) % len(_COLOURS)]
        x1, y1, x2, y2 = (round(v) for v in det.box)
        if det.polygon:
            pts = np.array([[round(x), round(y)] for x, y in det.polygon], dtype=np.int32)
            cv2.polylines(out, [pts], True, colour, thick, cv2.LINE_AA)
        else:
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        for kx, ky in det.keypoints or []:
            cv2.circle(out, (round(kx), round(ky)), thick + 1, (0, 0, 255), -1, cv2.LINE_AA)
        text = f"{det.label} {det.score:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(
            out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out


def write_image(path: Path, image: npt.NDArray[np.uint8]) -> None:
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(f"{path}: cannot encode an image with this suffix; use .png or .jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))
