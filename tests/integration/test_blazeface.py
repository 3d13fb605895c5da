"""BlazeFace (short and full range) on scikit-image's bundled photos, against hand-read
ground truth and against MediaPipe's own graph (the stored reference, written by
scripts/make_blazeface_reference.py; the live comparison is test_blazeface_mediapipe.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from edge.boxes import iou
from edge.detectors import Detection, build_detector
from edge.detectors.preprocess import Transform
from edge.detectors.ssd_anchor import SsdAnchorDetector
from edge.models.resolve import ResolvedModel
from edge.runtime import load_backend
from tests.conftest import FIXTURES
from tests.support.mediapipe_faces import REQUIREMENTS, skimage_photos

# The astronaut's face in photo("astronaut") (512×512), read by eye off a 4× zoom
# with a 10 px grid: left cheek x≈179, right cheek x≈267, hairline y≈75, chin y≈175.
ASTRONAUT_FACE = (179.0, 75.0, 267.0, 175.0)
REFERENCE = json.loads((FIXTURES / "blazeface_reference.json").read_text())
# input.resampling = "warp" is MediaPipe's sampling bit for bit: only float rounding is left
# (measured: 6e-5 px, 2e-7 in score); the reference is stored to 1e-5 px.
E2E_TOLERANCE_PX = 1e-3
# On MediaPipe's exact input tensor the decoder (anchors, layout, weighted NMS) must agree.
DECODE_TOLERANCE_PX = 1e-3

Rgb = npt.NDArray[np.uint8]


def photo(name: str) -> Rgb:
    """One of scikit-image's bundled photos, RGB (or grey) uint8."""
    return np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)


def bgr(rgb: Rgb) -> Rgb:
    return np.ascontiguousarray(rgb[..., ::-1])


def reference_images() -> dict[str, Rgb]:
    """The photos scripts/make_blazeface_reference.py fed MediaPipe."""
    return skimage_photos()


@pytest.fixture(scope="module", params=["blazeface-short", "blazeface-full"])
def detector(request: pytest.FixtureRequest, zoo_model: Callable[[str], ResolvedModel]) -> Any:
    model = zoo_model(request.param)
    det = build_detector(model.manifest, load_backend(model.path), model.origin)
    assert isinstance(det, SsdAnchorDetector)
    yield det
    det.close()


def test_finds_the_astronaut_face(detector: SsdAnchorDetector) -> None:
    dets = detector.detect(bgr(photo("astronaut")))
    assert len(dets) == 1, dets
    face = dets[0]
    assert face.label == "face"
    assert face.score >= detector.score_threshold
    assert iou(face.box, ASTRONAUT_FACE) >= 0.7, face.box
    assert face.keypoints is not None and len(face.keypoints) == 6
    # eyes (keypoints 0, 1) lie inside the box, in its upper half; nose below them
    (lx, ly), (rx, ry), (_, ny) = face.keypoints[:3]
    x1, y1, x2, y2 = face.box
    for x, y in ((lx, ly), (rx, ry)):
        assert x1 < x < x2 and y1 < y < (y1 + y2) / 2
    assert ny > max(ly, ry)
    assert set(detector.times.ms) == {"pre", "invoke", "post"}


def test_no_face_in_coffee(detector: SsdAnchorDetector) -> None:
    assert detector.detect(bgr(photo("coffee"))) == []


def test_no_face_in_cat_at_safe_threshold(detector: SsdAnchorDetector) -> None:
    """The short model fires at ~0.6 on chelsea's face; 0.65 is the safe negative threshold."""
    saved = detector.score_threshold
    detector.score_threshold = max(saved, 0.65)
    try:
        assert detector.detect(bgr(photo("chelsea"))) == []
    finally:
        detector.score_threshold = saved


def test_threshold_override_drops_everything(detector: SsdAnchorDetector) -> None:
    saved = detector.score_threshold
    detector.score_threshold = 0.999
    try:
        assert detector.detect(bgr(photo("astronaut"))) == []
    finally:
        detector.score_threshold = saved


def _assert_close(ours: list[Detection], ref: list[dict[str, Any]], tol: float) -> None:
    assert len(ours) == len(ref), (ours, ref)
    for d, r in zip(ours, ref, strict=True):
        box_err = float(np.max(np.abs(np.subtract(d.box, r["box"]))))
        assert d.keypoints is not None
        kp_err = float(np.max(np.abs(np.subtract(d.keypoints, r["keypoints"]))))
        assert box_err <= tol, (d.box, r["box"])
        assert kp_err <= tol * 1.5, (d.keypoints, r["keypoints"])


@pytest.mark.parametrize("image", ["astronaut", "camera", "astronaut_crop", "astronaut_640x480"])
def test_matches_mediapipe_end_to_end(detector: SsdAnchorDetector, image: str) -> None:
    """At the manifest's own threshold, as the reference was made."""
    ref = REFERENCE["models"][detector.manifest.name][image]
    assert REFERENCE["thresholds"][detector.manifest.name] == detector.score_threshold
    ours = detector.detect(bgr(reference_images()[image]))
    _assert_close(ours, ref, E2E_TOLERANCE_PX)
    for d, r in zip(ours, ref, strict=True):
        assert abs(d.score - r["score"]) <= 1e-5


@pytest.mark.parametrize("image", ["astronaut", "camera"])
def test_decoder_matches_mediapipe_on_its_own_tensor(
    zoo_model: Callable[[str], ResolvedModel], image: str
) -> None:
    """Short range, 512² into 128²: MediaPipe's warp reads source pixel (4x, 4y) exactly (a
    whole-pixel coordinate, no interpolation), so its tensor is rgb[::4, ::4] in [-1, 1].
    (512 / 192 is not whole: full range's tensor interpolates; see the end-to-end test.)"""
    model = zoo_model("blazeface-short")
    detector = build_detector(model.manifest, load_backend(model.path), model.origin)
    assert isinstance(detector, SsdAnchorDetector)
    ref = REFERENCE["models"]["blazeface-short"][image]
    rgb = reference_images()[image]
    tensor = rgb[::4, ::4].astype(np.float32)[np.newaxis] * np.float32(2 / 255) - np.float32(1)
    try:
        outs = detector._backend.run({detector._input_name: tensor})
        ours = detector._postprocess(outs, Transform(0.25, 0.25, 0.0, 0.0, 128, 128, 512, 512))
    finally:
        detector.close()
    _assert_close(ours, ref, DECODE_TOLERANCE_PX)
    for d, r in zip(ours, ref, strict=True):
        assert abs(d.score - r["score"]) <= 1e-5


def test_reference_was_made_with_pinned_versions() -> None:
    assert REFERENCE["versions"]["mediapipe"] == "0.10.21"
    assert REFERENCE["requirements"] == list(REQUIREMENTS)


def test_letterbox_maps_back_to_image_pixels(detector: SsdAnchorDetector) -> None:
    """astronaut[20:260, 100:420] pasted at (40, 30) on a grey 400×300 canvas: the
    model letterboxes it (pads top and bottom) and the box must land on the shifted face."""
    canvas = np.full((300, 400, 3), 128, np.uint8)
    canvas[30:270, 40:360] = bgr(photo("astronaut"))[20:260, 100:420]
    (face,) = detector.detect(canvas)
    dx, dy = 40 - 100, 30 - 20
    expected = tuple(v + off for v, off in zip(ASTRONAUT_FACE, (dx, dy, dx, dy), strict=True))
    assert iou(face.box, expected) >= 0.7, (face.box, expected)
