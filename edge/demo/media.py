"""The demo's looping video, composed from the committed photos (see
scripts/make_demo_media.py for where they come from).

Two faces come and go over a 20 s loop at 15 frames/s, drifting a little so the
tracker has something to follow: the astronaut (frames 30–119) and the
photographer (frames 165–254); the other frames show the coffee cup alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

MEDIA = Path(__file__).with_name("media")
WAV = MEDIA / "speech_keyword_16k.wav"
W, H, FPS, FRAMES = 640, 480, 15.0, 300

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Appearance:
    photo: str
    first: int
    last: int
    x: int
    y: int


SCRIPT = (
    Appearance("face_astronaut.jpg", 30, 119, 360, 60),
    Appearance("face_camera.jpg", 165, 254, 120, 200),
)


def _read(name: str) -> Image:
    image = cv2.imread(str(MEDIA / name), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{MEDIA / name}: demo media missing; reinstall edgewise")
    return np.asarray(image, np.uint8)


def frame(index: int, background: Image, faces: dict[str, Image]) -> Image:
    out = background.copy()
    for a in SCRIPT:
        if a.first <= index <= a.last:
            drift = int(20 * np.sin((index - a.first) / 15.0))
            patch = faces[a.photo]
            ph, pw = patch.shape[:2]
            x = min(max(a.x + drift, 0), W - pw)
            out[a.y : a.y + ph, x : x + pw] = patch
    return out


def build_video(path: Path) -> Path:
    """Write the MJPG .avi once; later calls reuse it."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    background = _read("background.jpg")
    faces = {a.photo: _read(a.photo) for a in SCRIPT}
    tmp = path.with_suffix(".part.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"{tmp}: OpenCV cannot write MJPG video here")
    try:
        for i in range(FRAMES):
            writer.write(frame(i, background, faces))
    finally:
        writer.release()
    tmp.replace(path)
    return path
