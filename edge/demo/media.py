"""The demo's looping video, composed from the committed photos (see
scripts/make_demo_media.py for where they come from).

Over a 20 s loop at 15 frames/s, on scikit-image's coffee cup:

- two faces come and go, drifting a little so the tracker has something to follow:
  the astronaut (frames 30–119, top right) and the photographer (frames 165–254, top
  left);
- a person (the whole astronaut photo) walks left to right along the bottom (frames
  0–134): it crosses the line ``door`` (x = 0.45) inwards and enters the zone
  ``walkway`` (x ≥ 0.6, y ≥ 0.6, by the bottom centre of its box);
- a cat (chelsea) walks right to left along the bottom (frames 150–284): it starts in
  ``walkway``, leaves it and crosses ``door`` outwards.

``SCRIPT``, ``WALKWAY`` and ``DOOR`` are the ground truth that tests/integration/test_demo.py
checks the hub against; edge/demo/run.py puts the same zone and line in the device config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

MEDIA = Path(__file__).with_name("media")
WAV = MEDIA / "speech_keyword_16k.wav"
VIDEO = "demo-v2.avi"  # a new name whenever SCRIPT changes: build_video reuses the file
W, H, FPS, FRAMES = 640, 480, 15.0, 300

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Appearance:
    """``photo`` is on screen from frame ``first`` to ``last``: its top-left corner moves
    in a straight line from (x, y) to (x_end, y_end), plus ``drift`` px of sway."""

    photo: str
    first: int
    last: int
    x: int
    y: int
    x_end: int
    y_end: int
    drift: int = 20
    label: str = "face"  # what it should be detected as


SCRIPT = (
    Appearance("face_astronaut.jpg", 30, 119, 360, 30, 360, 30),
    Appearance("face_camera.jpg", 165, 254, 40, 30, 40, 30),
    Appearance("person_astronaut.jpg", 0, 134, 0, 270, 440, 270, 0, "person"),
    Appearance("cat_chelsea.jpg", 150, 284, 400, 310, 0, 310, 0, "cat"),
)
# normalized, as in [[streams.zones]] / [[streams.lines]]
WALKWAY = ((0.6, 0.6), (1.0, 0.6), (1.0, 1.0), (0.6, 1.0))
DOOR = ((0.45, 1.0), (0.45, 0.55))  # drawn upwards: left to right is "in"


def _read(name: str) -> Image:
    image = cv2.imread(str(MEDIA / name), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{MEDIA / name}: demo media missing; reinstall edgewise")
    return np.asarray(image, np.uint8)


def frame(index: int, background: Image, faces: dict[str, Image]) -> Image:
    out: Image = background.copy()  # numpy 2.4 types copy() as Any when checked as 3.10
    for a in SCRIPT:
        if a.first <= index <= a.last:
            t = (index - a.first) / max(a.last - a.first, 1)
            drift = int(a.drift * np.sin((index - a.first) / 15.0))
            patch = faces[a.photo]
            ph, pw = patch.shape[:2]
            x = min(max(round(a.x + t * (a.x_end - a.x)) + drift, 0), W - pw)
            y = min(max(round(a.y + t * (a.y_end - a.y)), 0), H - ph)
            out[y : y + ph, x : x + pw] = patch
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
