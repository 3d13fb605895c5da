"""A second real Ultralytics YOLOv8 export (zoo ``nudenet-320n``: dynamic input shape,
18 classes, NudeNet's own settings: top-left padding, class-agnostic NMS at IoU 0.45)
against Ultralytics 8.4.190 running the same ONNX file with the same NMS settings.

Images: scikit-image's ``astronaut`` and ``camera`` (512×512: square, so Ultralytics'
centred letterbox and NudeNet's top-left one are the same tensor). Ground truth: the
astronaut's face, read by eye at (179, 75)-(267, 175) (as in tests/integration/test_cli.py),
is one FACE_FEMALE with IoU ≥ 0.6; nothing else is found on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.boxes import iou
from edge.detectors import load_detector
from edge.detectors.yolo import YoloDetector
from edge.models.resolve import ResolvedModel
from tests.fixtures.text_scene import photo
from tests.support.ultralytics_ref import run_reference

pytestmark = pytest.mark.slow
ASTRONAUT_FACE = (179.0, 75.0, 267.0, 175.0)


@pytest.fixture(scope="module")
def model(zoo_model: Callable[[str], ResolvedModel]) -> ResolvedModel:
    return zoo_model("nudenet-320n")


@pytest.fixture(scope="module")
def detector(model: ResolvedModel) -> Iterator[YoloDetector]:
    _, det = load_detector(model)
    assert isinstance(det, YoloDetector)
    yield det
    det.close()


def test_agrees_with_ultralytics(
    model: ResolvedModel, detector: YoloDetector, tmp_path: Path
) -> None:
    names = ["astronaut", "camera"]
    paths = []
    for name in names:
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), photo(name))
    nms = model.manifest.decoder.params["nms"]
    ref = run_reference(
        model.path, paths, 320, iou=nms["iou_threshold"], agnostic=nms["class_agnostic"]
    )
    compared = 0
    for name, path, r in zip(names, paths, ref, strict=True):
        ours = detector.detect(cv2.imread(str(path)))
        assert len(ours) == len(r["conf"]) >= 1, (name, ours, r)
        order = np.argsort(-np.asarray(r["conf"]), kind="stable")
        for d, j in zip(ours, order, strict=True):
            assert d.label == model.manifest.labels[r["cls"][j]], name
            assert abs(d.score - r["conf"][j]) <= 1e-3, name
            assert np.abs(np.asarray(d.box) - np.asarray(r["boxes"][j])).max() <= 1.0, name
            compared += 1
    assert compared >= 2


def test_finds_the_astronauts_face(detector: YoloDetector) -> None:
    (face,) = detector.detect(photo("astronaut"))
    assert face.label == "FACE_FEMALE" and face.score > 0.5
    assert iou(face.box, ASTRONAUT_FACE) >= 0.6, face.box


@pytest.mark.parametrize("name", ["nudenet-320n", "yolov8n-doclaynet"])
def test_zoo_labels_are_the_exports_own_names(
    zoo_model: Callable[[str], ResolvedModel], name: str
) -> None:
    """Ultralytics writes the class names into the ONNX metadata (``names``, a Python
    dict literal); the zoo's labels are those, in class order."""
    import ast

    import onnx

    r = zoo_model(name)
    meta = {p.key: p.value for p in onnx.load(str(r.path), load_external_data=False).metadata_props}
    names = ast.literal_eval(meta["names"])
    assert r.manifest.labels == [names[i] for i in range(len(names))]
