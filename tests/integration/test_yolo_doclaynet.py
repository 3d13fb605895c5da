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
import numpy.typing as npt
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


def _rewrap(src: Path, dst: Path, style: str) -> None:
    """The real model with its output re-laid: transposed ``[1, N, 15]``, or YOLOv5's
    ``[1, N, 16]`` with an objectness column of ones (so every score stays the same)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    n = g.output[0].type.tensor_type.shape.dim[2].dim_value
    g.node.append(helper.make_node("Transpose", ["output0"], ["t"], perm=[0, 2, 1]))
    last, width = "t", 15
    if style == "yolov5":
        g.initializer.append(numpy_helper.from_array(np.ones((1, n, 1), np.float32), "ones"))
        # the model is opset 12: Split takes its sizes as an attribute
        g.node.append(helper.make_node("Split", ["t"], ["box", "cls"], axis=2, split=[4, 11]))
        g.node.append(helper.make_node("Concat", ["box", "ones", "cls"], ["v5"], axis=2))
        last, width = "v5", 16
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(last, onnx.TensorProto.FLOAT, [1, n, width]))
    onnx.save(m, str(dst))


@pytest.mark.parametrize(("style", "layout"), [("transposed", "yolov8_transposed"),
                                               ("yolov5", "yolov5")])  # fmt: skip
def test_the_same_model_in_other_layouts_gives_the_same_boxes(
    model: ResolvedModel, detector: YoloDetector, tmp_path: Path, style: str, layout: str
) -> None:
    import json

    from edge.models.zoo import sha256_file

    _rewrap(model.path, tmp_path / "m.onnx", style)
    doc = model.manifest.model_dump(mode="json", exclude_none=True)
    doc.pop("source")
    doc.update(file="m.onnx", sha256=sha256_file(tmp_path / "m.onnx"))
    doc["decoder"] = {"type": "yolo"}  # layout: auto, from the shape and the 11 labels
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    _, other = load_detector(str(tmp_path / "manifest.json"))
    assert isinstance(other, YoloDetector) and other.layout == layout
    page, _ = doc_page.render()
    want, got = detector.detect(page), other.detect(page)
    other.close()
    assert [d.label for d in got] == [d.label for d in want]
    np.testing.assert_allclose([d.box for d in got], [d.box for d in want], atol=1e-3)
    np.testing.assert_allclose([d.score for d in got], [d.score for d in want], atol=1e-6)


def _end_to_end(src: Path, dst: Path) -> None:
    """The real model with NMS inside the graph, as an end-to-end export: ``[1, K, 6]`` rows
    x1, y1, x2, y2, score, class in input pixels (best class per box, per-class NMS at IoU
    0.7 by the class-offset trick, score > 0.25, at most 300: Ultralytics' settings)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph

    def const(name: str, value: npt.NDArray[Any]) -> str:
        g.initializer.append(numpy_helper.from_array(value, name))
        return name

    i64, f32 = np.int64, np.float32
    nodes = [
        ("Transpose", ["output0"], ["t"], {"perm": [0, 2, 1]}),
        ("Split", ["t"], ["xy", "wh", "cls"], {"axis": 2, "split": [2, 2, 11]}),
        ("ReduceMax", ["cls"], ["score"], {"axes": [2], "keepdims": 1}),
        ("ArgMax", ["cls"], ["cid"], {"axis": 2, "keepdims": 1}),
        ("Cast", ["cid"], ["cidf"], {"to": onnx.TensorProto.FLOAT}),
        ("Mul", ["wh", const("half", np.array(0.5, f32))], ["hwh"], {}),
        ("Sub", ["xy", "hwh"], ["p1"], {}),
        ("Add", ["xy", "hwh"], ["p2"], {}),
        ("Concat", ["p1", "p2"], ["xyxy"], {"axis": 2}),
        ("Mul", ["cidf", const("span", np.array(4096.0, f32))], ["off"], {}),
        ("Add", ["xyxy", "off"], ["moved"], {}),
        ("Transpose", ["score"], ["scores"], {"perm": [0, 2, 1]}),
        ("NonMaxSuppression", ["moved", "scores", const("maxo", np.array([300], i64)),
                               const("iou", np.array([0.7], f32)),
                               const("thr", np.array([0.25], f32))], ["sel"], {}),
        ("Gather", ["sel", const("col", np.array(2, i64))], ["idx"], {"axis": 1}),
        ("Concat", ["xyxy", "score", "cidf"], ["rows"], {"axis": 2}),
        ("Gather", ["rows", "idx"], ["e2e"], {"axis": 1}),
    ]  # fmt: skip
    for op, ins, outs, attrs in nodes:
        g.node.append(helper.make_node(op, ins, outs, **attrs))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("e2e", onnx.TensorProto.FLOAT, [1, "K", 6]))
    onnx.save(m, str(dst))


def test_an_end_to_end_export_read_by_the_detections_decoder(
    model: ResolvedModel, detector: YoloDetector, tmp_path: Path
) -> None:
    """The ``detections`` decoder (style end_to_end) reads the in-graph NMS's boxes and
    un-letterboxes them as the yolo decoder does: the same detections."""
    import json

    from edge.models.zoo import sha256_file

    _end_to_end(model.path, tmp_path / "e2e.onnx")
    doc = model.manifest.model_dump(mode="json", exclude_none=True)
    doc.pop("source")
    doc.update(file="e2e.onnx", sha256=sha256_file(tmp_path / "e2e.onnx"))
    doc["decoder"] = {"type": "detections", "style": "end_to_end"}
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    _, other = load_detector(str(tmp_path / "manifest.json"))
    for img in (doc_page.render()[0], photo("page")):
        want, got = detector.detect(img), other.detect(img)
        assert [d.label for d in got] == [d.label for d in want]
        np.testing.assert_allclose([d.box for d in got], [d.box for d in want], atol=1e-2)
        np.testing.assert_allclose([d.score for d in got], [d.score for d in want], atol=1e-6)
    other.close()
