"""MediaPipe's own face detection (mediapipe 0.10.21, in its reference venv) on photos
with faces, for comparing edgewise's BlazeFace against it.

``PHOTOS`` are real photos (scikit-image's and matplotlib's bundled samples) and
framings of them that exercise letterboxing; ``mediapipe_faces`` runs them through
MediaPipe's graph (tests/support/mediapipe_face_ref.py) with the given model file and
returns its detections in image pixels. Both sides get the same decoded pixels (.npy).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from tests.support.ref_venv import RefVenvError, ensure_venv, run_in_venv

VENV = "refs-mediapipe-0.10.21"
# matplotlib is pinned for its sample photo (grace_hopper.jpg); mediapipe needs it anyway
REQUIREMENTS = ("mediapipe==0.10.21", "numpy==1.26.4", "matplotlib==3.11.2")
SCRIPT = Path(__file__).with_name("mediapipe_face_ref.py")

Rgb = npt.NDArray[np.uint8]

# name → the one face (x1, y1, x2, y2 image pixels; MediaPipe's short-range box, checked by
# eye on a drawing of it: forehead to chin, cheek to cheek)
FACES = {
    "astronaut": (178, 83, 273, 178),  # Eileen Collins, skimage astronaut 512×512
    "camera": (180, 122, 265, 207),  # the cameraman, behind his camera, skimage camera (grey)
    "grace_hopper": (171, 147, 366, 341),  # Grace Hopper, matplotlib sample 512 wide × 600
    "astronaut_crop": (112, 78, 216, 182),  # astronaut rows 0:384, cols 64:512 (448×384)
    "astronaut_640x480": (243, 121, 335, 212),  # astronaut[40:360, 60:460] at (120, 80), grey
    "hopper_portrait": (64, 40, 265, 240),  # grace_hopper rows 100:500, cols 100:400 (300×400)
}


def python() -> Path:
    return ensure_venv(VENV, REQUIREMENTS)


def skimage_photos() -> dict[str, Rgb]:
    """The photos made from scikit-image's bundled samples (no reference venv needed)."""
    import skimage.data

    astro = np.asarray(skimage.data.astronaut(), np.uint8)  # type: ignore[no-untyped-call]
    cam = np.asarray(skimage.data.camera(), np.uint8)  # type: ignore[no-untyped-call]
    wide = np.full((480, 640, 3), 128, np.uint8)
    wide[80:400, 120:520] = astro[40:360, 60:460]
    return {
        "astronaut": astro,
        "camera": np.ascontiguousarray(np.dstack([cam] * 3), dtype=np.uint8),
        "astronaut_crop": np.ascontiguousarray(astro[0:384, 64:512]),
        "astronaut_640x480": wide,
    }


def photos() -> dict[str, Rgb]:
    """All RGB uint8 photos, each with one face (see ``FACES``); builds the venv."""
    py = python()
    data = subprocess.run(
        [str(py), "-c", "import matplotlib; print(matplotlib.get_data_path())"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    bgr = cv2.imread(str(Path(data) / "sample_data" / "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RefVenvError(f"grace_hopper.jpg is missing from matplotlib in {py}")
    hopper = np.ascontiguousarray(bgr[..., ::-1], dtype=np.uint8)
    return {
        **skimage_photos(),
        "grace_hopper": hopper,
        "hopper_portrait": np.ascontiguousarray(hopper[100:500, 100:400]),
    }


def mediapipe_faces(
    model: Path, which: str, threshold: float, images: dict[str, Rgb]
) -> dict[str, list[dict[str, Any]]]:
    """MediaPipe's detections (score, box, keypoints in pixels) for each image."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, rgb in images.items():
            paths.append(str(Path(tmp) / f"{name}.npy"))
            np.save(paths[-1], rgb)
        out = run_in_venv(python(), SCRIPT, str(model), which, f"{threshold}", *paths)
    found = json.loads(out)["detections"]
    return dict(zip(images, found, strict=True))
