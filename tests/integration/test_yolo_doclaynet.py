"""A real Ultralytics YOLOv8 export (zoo ``yolov8n-doclaynet``) against Ultralytics itself.

Reference: ``ultralytics`` 8.4.190 with onnxruntime in its own venv
(tests/support/ultralytics_ref.py), running the same ONNX file: its ``LetterBox``
tensor and its ``predict`` post-processing (NMS, ``scale_boxes``).

Images: the drawn document page of tests/fixtures/doc_page.py (portrait: padded left
and right), its top 900 rows (landscape: padded above and below) and scikit-image's
``page`` (a real scan, 191×384 grey: scaled up).

Ground truth (doc_page.REGIONS): the title, two paragraphs, the table and the
pasted photo, each found with IoU ≥ 0.8 and its DocLayNet label. The model calls the
one-line title "Section-header" (DocLayNet's own distinction between the two is a
page's main title vs a heading; the drawn page has no other heading), so either
label counts for the title.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.boxes import iou
from edge.detectors import load_detector
from edge.detectors.preprocess import ImagePreprocessor
from edge.detectors.yolo import YoloDetector
from edge.models.manifest import ImageInput
from edge.models.resolve import ResolvedModel
from edge.runtime.base import TensorSpec
from tests.fixtures import doc_page
from tests.fixtures.text_scene import photo
from tests.support.ultralytics_ref import run_reference

pytestmark = pytest.mark.slow
MODEL = "yolov8n-doclaynet"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    page, _ = doc_page.render()
    out = {"page": page, "page_top": page[:900], "skimage_page": photo("page")}
    paths = {}
    for name, img in out.items():
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), img)
    return paths


@pytest.fixture(scope="module")
def model(zoo_model: Callable[[str], ResolvedModel]) -> ResolvedModel:
    return zoo_model(MODEL)


@pytest.fixture(scope="module")
def reference(model: ResolvedModel, images: dict[str, Path]) -> dict[str, dict[str, Any]]:
    results = run_reference(model.path, list(images.values()), 1024)
    return dict(zip(images, results, strict=True))


@pytest.fixture(scope="module")
def detector(model: ResolvedModel) -> Iterator[YoloDetector]:
    _, det = load_detector(model)
    assert isinstance(det, YoloDetector)
    yield det
    det.close()


def test_letterbox_tensor_equals_ultralytics(
    model: ResolvedModel, images: dict[str, Path], reference: dict[str, Any]
) -> None:
    spec = model.manifest.input
    assert isinstance(spec, ImageInput)
    pre = ImagePreprocessor(spec, TensorSpec("images", (1, 3, 1024, 1024), np.dtype(np.float32)))
    for name, path in images.items():
        ours, _ = pre(cv2.imread(str(path)))
        ref = np.load(str(path) + ".letterbox.npy")
        assert ours.shape == ref.shape == (1, 3, 1024, 1024), name
        # the same pixels (uint8 before scaling), and the same floats to within x/255 vs x·(1/255)
        assert np.array_equal(np.rint(ours * 255), np.rint(ref * 255)), name
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6, err_msg=name)


def test_boxes_classes_scores_agree_with_ultralytics(
    detector: YoloDetector, images: dict[str, Path], reference: dict[str, Any]
) -> None:
    labels = detector.manifest.labels
    compared = 0
    for name, path in images.items():
        ours = detector.detect(cv2.imread(str(path)))
        ref = reference[name]
        assert len(ours) == len(ref["conf"]), f"{name}: {len(ours)} vs {len(ref['conf'])} boxes"
        order = np.argsort(-np.asarray(ref["conf"]), kind="stable")
        for d, j in zip(ours, order, strict=True):  # both best first
            assert d.label == labels[ref["cls"][j]], name
            assert abs(d.score - ref["conf"][j]) <= 1e-3, (name, d, ref["conf"][j])
            assert np.abs(np.asarray(d.box) - np.asarray(ref["boxes"][j])).max() <= 1.0, name
            compared += 1
    assert compared >= 8  # the page alone has 5 regions


def test_detections_cover_the_drawn_regions(detector: YoloDetector) -> None:
    page, regions = doc_page.render()
    dets = detector.detect(page)
    for region in regions:
        accepted = {"Title", "Section-header"} if region.label == "Title" else {region.label}
        best = max((iou(d.box, region.box) for d in dets if d.label in accepted), default=0.0)
        assert best >= 0.8, (region, [(d.label, d.box) for d in dets])
    assert len(dets) == len(regions)  # nothing else on the page
