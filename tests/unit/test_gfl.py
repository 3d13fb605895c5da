"""The gfl decoder's mechanics on hand-made tensors, and its build-time shape checks on tiny
onnx.helper graphs (the real model is checked in tests/integration/test_nanodet.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.detectors import decoder_entry, load_detector
from edge.detectors.gfl import GflDecoder, Params, centres
from edge.errors import ManifestError
from edge.models.manifest import parse_manifest


def _params(**kw: Any) -> Params:
    base: dict[str, Any] = {
        "strides": [8],
        "reg_max": 3,
        "scores_output": [0],
        "boxes_output": [1],
    }
    return Params.model_validate({**base, **kw})


def _onehot(bins: list[int], reg_max: int) -> np.ndarray:
    """Distribution logits that put (almost) all mass on one bin per side."""
    out = np.full((4, reg_max + 1), -50.0, np.float32)
    for side, b in enumerate(bins):
        out[side, b] = 50.0
    return out.reshape(-1)


def test_centres_follow_the_offset_row_major() -> None:
    xy, st = centres([8, 16], 32, 16, 0.5)
    assert xy.shape == (4 * 2 + 2 * 1, 2)
    np.testing.assert_array_equal(xy[:5], [[4, 4], [12, 4], [20, 4], [28, 4], [4, 12]])
    np.testing.assert_array_equal(xy[8:], [[8, 8], [24, 8]])
    np.testing.assert_array_equal(st, [8] * 8 + [16] * 2)
    xy0, _ = centres([8], 16, 16, 0.0)
    np.testing.assert_array_equal(xy0, [[0, 0], [8, 0], [0, 8], [8, 8]])


def test_distances_are_the_softmax_expectation_times_stride() -> None:
    dec = GflDecoder(_params(), 16, 16)  # 2×2 cells of stride 8, reg_max 3
    scores = np.zeros((4, 2), np.float32)
    scores[3, 1] = 0.9  # cell (row 1, col 1): centre (12, 12), class 1
    dist = np.zeros((4, 16), np.float32)
    dist[3] = _onehot([1, 0, 0, 0], 3)
    dist[3, 4:8] = 0.0  # top side uniform over bins 0..3: mean 1.5 bins
    boxes, s, c = dec(scores, dist)
    np.testing.assert_allclose(boxes, [[12 - 8, 12 - 12, 12, 12]], atol=1e-4)
    np.testing.assert_allclose(s, [0.9])
    assert c.tolist() == [1]


def test_boxes_are_clipped_to_the_input() -> None:
    dec = GflDecoder(_params(), 16, 16)
    scores = np.zeros((4, 1), np.float32)
    scores[0, 0] = 0.8  # centre (4, 4)
    dist = np.tile(_onehot([3, 3, 3, 3], 3), (4, 1))  # 24 px each way
    boxes, _, _ = dec(scores, dist)
    np.testing.assert_allclose(boxes, [[0, 0, 16, 16]])


def _two_overlapping(dec: GflDecoder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.zeros((4, 2), np.float32)
    scores[0, 0], scores[1, 1], scores[2, 0] = 0.9, 0.8, 0.7  # cells 0, 1 and 2
    dist = np.tile(_onehot([2, 2, 2, 2], 3), (4, 1))  # 16 px boxes: cells 0/1/2 overlap
    return dec(scores, dist)


def test_nms_is_class_aware_unless_asked() -> None:
    aware = GflDecoder(_params(nms={"iou_threshold": 0.2}), 16, 16)
    _, scores, classes = _two_overlapping(aware)
    # class 0's two boxes suppress each other; the class-1 box survives beside them
    assert classes.tolist() == [0, 1] and scores.tolist() == pytest.approx([0.9, 0.8])
    agnostic = GflDecoder(_params(nms={"iou_threshold": 0.2, "class_agnostic": True}), 16, 16)
    assert _two_overlapping(agnostic)[2].tolist() == [0]
    capped = GflDecoder(_params(nms={"iou_threshold": 1.0, "max_detections": 2}), 16, 16)
    assert _two_overlapping(capped)[1].tolist() == pytest.approx([0.9, 0.8])


def test_sigmoid_option_applies_to_logits() -> None:
    dec = GflDecoder(_params(sigmoid=True), 16, 16)
    dec.score_threshold = 0.5
    scores = np.full((4, 1), -5.0, np.float32)
    scores[2, 0] = 2.0
    _, s, _ = dec(scores, np.zeros((4, 16), np.float32))
    np.testing.assert_allclose(s, [1 / (1 + np.exp(-2.0))], rtol=1e-6)


def test_params_need_one_output_per_stride() -> None:
    with pytest.raises(ValueError, match="scores_output needs one entry per stride"):
        _params(strides=[8, 16], boxes_output=[1, 3])


# --- build-time checks against a model's real output shapes --------------------------


def _model_dir(tmp_path: Path, shapes: dict[str, list[int]], **manifest: Any) -> Path:
    """A tiny ONNX model (input [1,3,16,16]; constant outputs of ``shapes``) + manifest."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    nodes, outs = [], []
    for name, shape in shapes.items():
        value = numpy_helper.from_array(np.zeros(shape, np.float32), name + "_v")
        nodes.append(helper.make_node("Constant", [], [name], value=value))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "g", [x], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    doc: dict[str, Any] = {
        "name": "tiny-gfl",
        "version": "1",
        "task": "detect",
        "format": "onnx",
        "file": "m.onnx",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "license": "MIT",
        "input": {"kind": "image", "layout": "NCHW", "resize": "letterbox"},
        "decoder": {
            "type": "gfl",
            "strides": [8, 16],
            "reg_max": 3,
            "scores_output": ["s8", "s16"],
            "boxes_output": ["b8", "b16"],
        },
        "labels": ["a", "b"],
        **manifest,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    return tmp_path


GOOD = {"s8": [1, 4, 2], "s16": [1, 1, 2], "b8": [1, 4, 16], "b16": [1, 1, 16]}


def test_matching_shapes_build_and_detect_nothing_on_zeros(tmp_path: Path) -> None:
    _, det = load_detector(str(_model_dir(tmp_path, GOOD)))
    try:
        assert det.detect(np.zeros((20, 30, 3), np.uint8)) == []  # type: ignore[union-attr]
    finally:
        det.close()


@pytest.mark.parametrize(
    ("shapes", "manifest", "message"),
    [
        (
            {**GOOD, "b8": [1, 4, 44]},  # reg_max 10 model, manifest says 3
            {},
            r"decoder\.boxes_output\[0\]: output 'b8' has shape \[1, 4, 44\], expected "
            r"\[1, 4, 16\] for stride 8 on a 16×16 input",
        ),
        (
            {**GOOD, "s16": [1, 4, 2]},  # a stride-8 sized output where stride 16 belongs
            {},
            r"decoder\.scores_output\[1\]: output 's16' has shape \[1, 4, 2\], expected "
            r"\[1, 1, 2\] for stride 16",
        ),
        (
            GOOD,
            {"labels": ["a", "b", "c"]},  # a labels list with the wrong count
            r"decoder\.scores_output\[0\]: output 's8' has shape \[1, 4, 2\], expected "
            r"\[1, 4, 3\] .*3 labels",
        ),
        (
            GOOD,
            {"decoder": {"type": "gfl", "strides": [8, 16], "reg_max": 3,
                         "scores_output": ["s8", "nope"], "boxes_output": ["b8", "b16"]}},
            r"decoder\.scores_output\[1\]: no output 'nope'",
        ),
    ],
)  # fmt: skip
def test_a_manifest_that_does_not_fit_the_model_is_one_line(
    tmp_path: Path, shapes: dict[str, list[int]], manifest: dict[str, Any], message: str
) -> None:
    with pytest.raises(ManifestError, match=message) as err:
        load_detector(str(_model_dir(tmp_path, shapes, **manifest)))
    assert "\n" not in str(err.value)


def test_decoder_options_are_validated_before_loading(tmp_path: Path) -> None:
    doc = json.loads((_model_dir(tmp_path, GOOD) / "manifest.json").read_text())
    doc["decoder"]["boxes_output"] = ["b8"]
    with pytest.raises(ManifestError, match=r"decoder\..*boxes_output needs one entry per stride"):
        decoder_entry(parse_manifest(doc, "m.json"), "m.json")
