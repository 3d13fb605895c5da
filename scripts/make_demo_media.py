"""Build the demo's sample media (committed under edge/demo/media/), from real sources.

    .venv/bin/python scripts/make_demo_media.py

- background.jpg: scikit-image's ``coffee`` (CC0, Rachel Michetti), 640×480.
- face_astronaut.jpg: head and shoulders from scikit-image's ``astronaut`` (Eileen
  Collins, NASA, public domain), 200×200.
- face_camera.jpg: the photographer from scikit-image's ``camera`` (CC0), 200×200.
- person_astronaut.jpg: the whole ``astronaut`` photo (public domain), 200×200: a person
  from the hair to the suit, that nanodet-m scores 0.41-0.72 as ``person`` wherever it
  is pasted on the background at the demo's 640×480.
- cat_chelsea.jpg: the whole ``chelsea`` photo (Stéfan van der Walt's cat, CC0), 240×160,
  scored 0.32-0.64 as ``cat`` by nanodet-m the same way. Smaller cut-outs score less
  (180×120: 0.00-0.57, missed in 44 % of the places), hence these sizes. Along the
  demo's own paths (edge/demo/media.py) the person scores 0.35-0.64 and the cat
  0.46-0.67 in every fifth frame; tests/integration/test_demo.py checks it end to end.

Licences, as the docstrings of ``skimage.data`` state them: astronaut (NASA) "no known
copyright restrictions, released into the public domain"; camera (Lav Varshney), chelsea
(Stefan van der Walt) and coffee (Rachel Michetti): CC0.
- speech_keyword_16k.wav: the first espeak-ng sentence of tests/fixtures/speech_16k.wav,
  1 s of silence, then tests/fixtures/okay_nabu_16k.wav ("okay nabu", en-us, which
  pymicro-wakeword's own detector fires on), then 1 s of silence. 16 kHz mono 16-bit.

The demo composes its looping video from the JPEGs at start-up (edge/demo/media.py).
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "edge" / "demo" / "media"
sys.path.insert(0, str(ROOT))

from edge.media.audio import read_audio  # noqa: E402


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    bgr = lambda rgb: np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # noqa: E731
    bg = cv2.resize(bgr(skimage.data.coffee()), (640, 480), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(OUT / "background.jpg"), bg, [cv2.IMWRITE_JPEG_QUALITY, 85])
    astro = bgr(skimage.data.astronaut())[20:260, 110:350]
    cv2.imwrite(
        str(OUT / "face_astronaut.jpg"),
        cv2.resize(astro, (200, 200), interpolation=cv2.INTER_AREA),
        [cv2.IMWRITE_JPEG_QUALITY, 90],
    )
    cam = np.asarray(skimage.data.camera())[20:280, 150:410]
    cam3 = cv2.cvtColor(cam, cv2.COLOR_GRAY2BGR)
    cv2.imwrite(
        str(OUT / "face_camera.jpg"),
        cv2.resize(cam3, (200, 200), interpolation=cv2.INTER_AREA),
        [cv2.IMWRITE_JPEG_QUALITY, 90],
    )
    cv2.imwrite(
        str(OUT / "person_astronaut.jpg"),
        cv2.resize(bgr(skimage.data.astronaut()), (200, 200), interpolation=cv2.INTER_AREA),
        [cv2.IMWRITE_JPEG_QUALITY, 85],
    )
    cv2.imwrite(
        str(OUT / "cat_chelsea.jpg"),
        cv2.resize(bgr(skimage.data.chelsea()), (240, 160), interpolation=cv2.INTER_AREA),
        [cv2.IMWRITE_JPEG_QUALITY, 85],
    )
    rate = 16000
    speech = read_audio(ROOT / "tests" / "fixtures" / "speech_16k.wav", rate)
    keyword = read_audio(ROOT / "tests" / "fixtures" / "okay_nabu_16k.wav", rate)
    silence = np.zeros(rate, np.float32)
    clip = np.concatenate([speech[int(0.5 * rate) : int(4.3 * rate)], silence, keyword, silence])
    pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2")
    with wave.open(str(OUT / "speech_keyword_16k.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    print(f"wrote {OUT}: {sorted(p.name for p in OUT.iterdir())}, clip {len(clip) / rate:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
