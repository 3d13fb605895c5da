"""Build the sample inputs the README and docs/ examples use (committed under examples/media/).

    .venv/bin/python scripts/make_sample_media.py

Every example command in the docs runs on these files as written, and a test runs them
(tests/integration/test_docs_examples.py), so they are real pictures and real speech:

- photo.jpg: scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain), 512×512,
  JPEG quality 90: one face for ``blazeface-short`` and one person for ``nanodet-m``.
- cat.jpg: scikit-image's ``chelsea`` (Stéfan van der Walt's cat, CC0), 451×300: a cat
  for ``nanodet-m``.
- page.png: scikit-image's ``text`` (CC0), 448×172 grey text on a page: text boxes for
  ``ppocr-det``.
- speech.wav: the demo's edge/demo/media/speech_keyword_16k.wav (an espeak-ng sentence,
  silence, then "okay nabu"; scripts/make_demo_media.py), 16 kHz mono 16-bit: speech for
  ``silero-vad`` and the keyword for ``okay-nabu``.
- lobby.avi: 2 s (30 frames, 15 frames/s) of the demo's video (edge/demo/media.py,
  frames 30-59, the astronaut's face at the top right), scaled to 320×240, MJPG: a video
  for ``examples/configs/video.toml``.

Licences, as the docstrings of ``skimage.data`` state them: astronaut (NASA) "no known
copyright restrictions, released into the public domain"; chelsea, coffee, camera and
text: CC0. The output is deterministic for a given OpenCV; rerun it only to change a file.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "media"
sys.path.insert(0, str(ROOT))

from edge.demo import media as demo  # noqa: E402

VIDEO_FRAMES = range(30, 60)  # the astronaut's face is on screen from frame 30 to 119
VIDEO_SIZE = (320, 240)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 90]
    cv2.imwrite(str(OUT / "photo.jpg"), _bgr(skimage.data.astronaut()), jpeg)
    cv2.imwrite(str(OUT / "cat.jpg"), _bgr(skimage.data.chelsea()), jpeg)
    cv2.imwrite(str(OUT / "page.png"), np.asarray(skimage.data.text()))
    shutil.copyfile(demo.WAV, OUT / "speech.wav")

    background = demo._read("background.jpg")
    faces = {a.photo: demo._read(a.photo) for a in demo.SCRIPT}
    writer = cv2.VideoWriter(
        str(OUT / "lobby.avi"), cv2.VideoWriter.fourcc(*"MJPG"), demo.FPS, VIDEO_SIZE
    )
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
    try:
        for i in VIDEO_FRAMES:
            frame = demo.frame(i, background, faces)
            writer.write(cv2.resize(frame, VIDEO_SIZE, interpolation=cv2.INTER_AREA))
    finally:
        writer.release()
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size / 1e3:.1f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
