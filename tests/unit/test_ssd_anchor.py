"""SSD anchors, NMS and decoding on hand-made tensors (no model file)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from edge.detectors import decoder_entry
from edge.detectors.nms import iou_one_to_many, nms, weighted_nms
from edge.detectors.ssd_anchor import (
    AnchorOptions,
    Params,
    SsdAnchorDecoder,
    SsdAnchorDetector,
    generate_anchors,
)
from edge.errors import ManifestError
from edge.models.manifest import Manifest, read_manifest
from edge.runtime.base import Array, TensorSpec

F32 = np.dtype(np.float32)
ZOO = Path(__file__).resolve().parents[2] / "edge" / "models" / "zoo"
Floats = npt.NDArray[np.float32]


def manifest_of(name: str) -> Manifest:
    return read_manifest(ZOO / f"{name}.json")


def params_of(name: str) -> Params:
    _, params = decoder_entry(manifest_of(name), name)
    assert isinstance(params, Params)
    return params


# --- anchors ---------------------------------------------------------------------------


def test_short_range_anchors() -> None:
    a = generate_anchors(params_of("blazeface-short").anchors)
    assert a.shape == (896, 4)
    # layer 0: 16×16 cells, 2 anchors each; layers 1-3 share stride 16: 8×8 cells, 6 each
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(a[511], [15.5 / 16, 15.5 / 16, 1, 1])
    np.testing.assert_allclose(a[512:518], [[0.5 / 8, 0.5 / 8, 1, 1]] * 6)
    np.testing.assert_allclose(a[895], [7.5 / 8, 7.5 / 8, 1, 1])


def test_full_range_anchors() -> None:
    a = generate_anchors(params_of("blazeface-full").anchors)
    assert a.shape == (2304, 4)  # 48×48 cells, one anchor (no interpolated scale)
    np.testing.assert_allclose(a[0], [0.5 / 48, 0.5 / 48, 1, 1])
    np.testing.assert_allclose(a[48], [0.5 / 48, 1.5 / 48, 1, 1])
    np.testing.assert_allclose(a[2303], [47.5 / 48, 47.5 / 48, 1, 1])


def test_ssd_mobilenet_anchor_sizes() -> None:
    """MediaPipe's SSD-MobileNet-v1 options give the well-known 1917 anchors."""
    o = AnchorOptions(
        num_layers=6, min_scale=0.2, max_scale=0.95, input_size_width=300,
        input_size_height=300, strides=[16, 32, 64, 128, 256, 512],
        aspect_ratios=[1.0, 2.0, 0.5, 3.0, 0.3333], reduce_boxes_in_lowest_layer=True,
    )  # fmt: skip
    a = generate_anchors(o)
    assert a.shape == (1917, 4)  # 19²·3 + (10² + 5² + 3² + 2² + 1²)·6
    np.testing.assert_allclose(a[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(a[1, 2:], [0.2 * math.sqrt(2), 0.2 / math.sqrt(2)], rtol=1e-6)


def test_strides_must_match_layers() -> None:
    with pytest.raises(ValidationError, match="strides has 2 entries"):
        AnchorOptions(
            num_layers=1, min_scale=0.1, max_scale=0.7, input_size_width=8,
            input_size_height=8, strides=[4, 8],
        )  # fmt: skip


# --- NMS -------------------------------------------------------------------------------

BOXES = np.array(
    [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32
)
SCORES = np.array([0.9, 0.6, 0.8, 0.5], dtype=np.float32)


def test_iou() -> None:
    # 90 / 110, 0, 50 / 150
    np.testing.assert_allclose(
        iou_one_to_many(BOXES[0], BOXES), [1.0, 90 / 110, 0.0, 50 / 150], rtol=1e-6
    )


def test_weighted_nms_merges_by_score() -> None:
    merged, scores, kept = weighted_nms(BOXES[:3], SCORES[:3], 0.3)
    # box 0 absorbs box 1 (IoU 0.82): x = (0·0.9 + 1·0.6) / 1.5 = 0.4; box 2 stands alone
    expected = [[0.4, 0.0, 10.4, 10.0], [20.0, 20.0, 30.0, 30.0]]
    np.testing.assert_allclose(merged, expected, rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.8])
    assert kept.tolist() == [0, 2]


def test_weighted_nms_threshold_is_strict_and_averages_extra_columns() -> None:
    values: Floats = np.zeros((4, 5), np.float32)
    values[:, :4] = BOXES
    values[:, 4] = [0, 1, 2, 3]
    merged, _, kept = weighted_nms(values, SCORES, 0.4)  # box 3 overlaps box 0 by 1/3 only
    assert kept.tolist() == [0, 2, 3]
    np.testing.assert_allclose(merged[0, 4], (0 * 0.9 + 1 * 0.6) / 1.5, rtol=1e-6)
    merged, _, kept = weighted_nms(values, SCORES, 0.3)
    assert kept.tolist() == [0, 2]
    np.testing.assert_allclose(merged[0, 4], (1 * 0.6 + 3 * 0.5) / 2.0, rtol=1e-6)


def test_hard_nms_and_cap() -> None:
    assert nms(BOXES, SCORES, 0.3).tolist() == [0, 2]
    assert nms(BOXES, SCORES, 0.9).tolist() == [0, 2, 1, 3]
    assert nms(BOXES, SCORES, 0.9, max_detections=2).tolist() == [0, 2]
    empty = np.zeros((0, 4), np.float32)
    assert nms(empty, np.zeros(0, np.float32), 0.3).size == 0
    assert weighted_nms(empty, np.zeros(0, np.float32), 0.3)[0].shape == (0, 4)


# --- decoding --------------------------------------------------------------------------

# Layer-1 cell (x=3, y=4) of the short-range model: anchor 512 + (4·8 + 3)·6 = 722,
# centre (3.5/8, 4.5/8) = (0.4375, 0.5625). Raw values are in 128-pixel units.
ANCHOR = 722


def hand_made(n: int = 896) -> tuple[Floats, Floats]:
    boxes = np.zeros((1, n, 16), np.float32)
    scores = np.full((1, n, 1), -10.0, np.float32)
    boxes[0, ANCHOR, :4] = [12.8, -6.4, 32.0, 25.6]  # dx +0.1, dy -0.05, w 0.25, h 0.2
    boxes[0, ANCHOR, 4:6] = [6.4, 12.8]  # keypoint 0: +0.05, +0.1
    scores[0, ANCHOR, 0] = 2.0  # sigmoid(2) = 0.8808
    boxes[0, ANCHOR + 1] = boxes[0, ANCHOR]  # a duplicate on the next anchor, lower score
    scores[0, ANCHOR + 1, 0] = 1.0
    return boxes, scores


def test_decoder_on_hand_made_tensor() -> None:
    p = params_of("blazeface-short")
    dec = SsdAnchorDecoder(p, generate_anchors(p.anchors))
    values, scores, classes = dec(*hand_made())
    assert values.shape == (2, 16)
    np.testing.assert_allclose(values[0, :4], [0.4125, 0.4125, 0.6625, 0.6125], atol=1e-6)
    np.testing.assert_allclose(values[0, 4:6], [0.4875, 0.6625], atol=1e-6)
    np.testing.assert_allclose(scores, [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))], rtol=1e-6)
    assert classes.tolist() == [0, 0]
    dec.score_threshold = 0.85  # logit 1.73: only the first survives the raw-logit cut
    assert dec(*hand_made())[1].size == 1
    dec.score_threshold = 0.9
    assert dec(*hand_made())[1].size == 0


class FakeBackend:
    """Returns fixed tensors; stands in for the interpreter, not for the decoder."""

    name = "fake"

    def __init__(self, outputs: list[Array], n: int = 896) -> None:
        self._outs = outputs
        self.inputs = [TensorSpec("input", (1, 128, 128, 3), F32)]
        self.outputs = [
            TensorSpec("regressors", (1, n, 16), F32),
            TensorSpec("classificators", (1, n, 1), F32),
        ]
        self.fed: dict[str, Array] = {}

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        self.fed = feeds
        return self._outs

    def close(self) -> None:
        pass


def test_detector_undoes_letterbox() -> None:
    """256×128 image → scale 0.5, 32 rows of padding top and bottom in the 128×128 input."""
    m = manifest_of("blazeface-short")
    backend: Any = FakeBackend(list(hand_made()))
    det = SsdAnchorDetector(m, backend, params_of("blazeface-short"))
    (face,) = det.detect(np.zeros((128, 256, 3), np.uint8))
    # model px = normalised × 128; image px = (model px - pad) / 0.5
    np.testing.assert_allclose(face.box, [105.6, 41.6, 169.6, 92.8], atol=1e-3)
    assert face.keypoints is not None and len(face.keypoints) == 6
    np.testing.assert_allclose(face.keypoints[0], [124.8, 105.6], atol=1e-3)
    assert face.label == "face"
    assert face.score == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    assert backend.fed["input"].shape == (1, 128, 128, 3)
    assert set(det.times.ms) == {"pre", "invoke", "post"}
    det.score_threshold = 0.95
    assert det.detect(np.zeros((128, 256, 3), np.uint8)) == []


def test_detector_rejects_wrong_anchor_count() -> None:
    m = manifest_of("blazeface-short")
    backend: Any = FakeBackend(list(hand_made(2304)), n=2304)
    with pytest.raises(ManifestError, match=r"num_boxes is 896 but .* 2304|expected 896"):
        SsdAnchorDetector(m, backend, params_of("blazeface-short"))
    bad = Manifest.model_validate(
        {**m.model_dump(), "decoder": {**m.decoder.model_dump(), "num_boxes": 900}}
    )
    with pytest.raises(ManifestError, match="num_boxes is 900"):
        SsdAnchorDetector(bad, FakeBackend(list(hand_made())), params_of_manifest(bad))


def params_of_manifest(m: Manifest) -> Params:
    return Params.model_validate(m.decoder.params)


def test_unknown_output_name_is_a_manifest_error() -> None:
    m = manifest_of("blazeface-short")
    p = params_of("blazeface-short").model_copy(update={"boxes_output": "nope"})
    with pytest.raises(ManifestError, match=r"decoder.boxes_output: no output 'nope'"):
        SsdAnchorDetector(m, FakeBackend(list(hand_made())), p)


def test_params_forbid_unknown_keys() -> None:
    m = manifest_of("blazeface-short")
    with pytest.raises(ValidationError):
        Params.model_validate({**m.decoder.params, "num_cords": 16})
