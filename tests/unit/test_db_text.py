"""DB text decoding on synthetic probability maps; the detector around it with a fake backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edge.detectors import decoder_entry
from edge.detectors.db_text import DBTextDetector, Params, TextBox, decode, to_detection
from edge.detectors.preprocess import Transform
from edge.errors import InputError, ManifestError, ModelError
from edge.models.manifest import Manifest, read_manifest
from edge.runtime.base import Array, TensorSpec

ZOO_FILE = Path(__file__).resolve().parents[2] / "edge" / "models" / "zoo" / "ppocr-det.json"


def blob_map(h: int, w: int, blobs: list[tuple[int, int, int, int, float]]) -> np.ndarray:
    """A probability map with rectangles (x1, y1, x2, y2 exclusive, value) on zeros."""
    prob = np.zeros((h, w), dtype=np.float32)
    for x1, y1, x2, y2, v in blobs:
        prob[y1:y2, x1:x2] = v
    return prob


def bounds(box: TextBox) -> tuple[float, float, float, float]:
    q = box.quad
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def test_one_rectangle_gives_one_unclipped_box() -> None:
    # Pixels x 50..149, y 40..59 at 0.9. The 2×2 dilation grows the mask one pixel
    # right and down, so the contour's rectangle is x 50..150, y 40..60 (100 × 20).
    # Unclip distance = area * 1.6 / perimeter = 2000 * 1.6 / 240 = 13.33 px each side.
    prob = blob_map(100, 200, [(50, 40, 150, 60, 0.9)])
    boxes = decode(prob, Params())
    assert len(boxes) == 1
    d = 2000 * 1.6 / 240
    assert bounds(boxes[0]) == pytest.approx((50 - d, 40 - d, 150 + d, 60 + d), abs=1.0)
    # score: the mean of prob over the filled 101 × 21 pixel rectangle
    assert boxes[0].score == pytest.approx(0.9 * 100 * 20 / (101 * 21), abs=1e-3)
    # corners come out as tl, tr, br, bl
    tl, tr, br, bl = boxes[0].quad
    assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]


def test_without_dilation_the_rectangle_is_the_blob() -> None:
    prob = blob_map(100, 200, [(50, 40, 150, 60, 0.9)])
    boxes = decode(prob, Params(use_dilation=False))
    # contour x 50..149, y 40..59 → 99 × 19; distance = 1881 * 1.6 / 236
    d = 99 * 19 * 1.6 / (2 * (99 + 19))
    assert bounds(boxes[0]) == pytest.approx((50 - d, 40 - d, 149 + d, 59 + d), abs=1.0)
    assert boxes[0].score == pytest.approx(0.9, abs=1e-6)


def test_two_blobs_give_two_boxes() -> None:
    prob = blob_map(120, 300, [(20, 20, 120, 40, 0.8), (150, 70, 280, 100, 0.95)])
    boxes = sorted(decode(prob, Params()), key=lambda b: bounds(b)[0])
    assert len(boxes) == 2
    left, right = bounds(boxes[0]), bounds(boxes[1])
    assert left[0] < 20 < 120 < left[2] < 150  # expanded but not reaching the other blob
    assert right[0] < 150 and right[2] > 280 and right[1] < 70 and right[3] > 100


def test_blob_under_box_thresh_is_dropped_unless_the_threshold_is_lowered() -> None:
    # 0.45 is above the pixel threshold (0.3) so the blob is a candidate, but its mean
    # probability (≤ 0.45) is under box_thresh 0.5.
    prob = blob_map(100, 200, [(50, 40, 150, 60, 0.45)])
    assert decode(prob, Params()) == []
    assert len(decode(prob, Params(), box_thresh=0.35)) == 1


def test_blob_under_pixel_thresh_is_not_a_candidate() -> None:
    prob = blob_map(100, 200, [(50, 40, 150, 60, 0.25)])
    assert decode(prob, Params(), box_thresh=0.0) == []


def test_tiny_blobs_are_dropped() -> None:
    # a 2×2 blob dilates to 3×3 pixels: its rectangle's short side is 2 < min_size 3;
    # a 6×6 blob of the same value is kept.
    prob = blob_map(60, 60, [(10, 10, 12, 12, 0.99)])
    assert decode(prob, Params()) == []
    prob = blob_map(60, 60, [(10, 10, 16, 16, 0.99)])
    assert len(decode(prob, Params())) == 1


def test_max_candidates_caps_the_contours_examined() -> None:
    prob = blob_map(
        100, 300, [(10, 10, 60, 30, 0.9), (100, 10, 150, 30, 0.9), (200, 10, 250, 30, 0.9)]
    )
    assert len(decode(prob, Params())) == 3
    assert len(decode(prob, Params(max_candidates=1))) == 1


def test_slow_score_uses_the_contour() -> None:
    prob = blob_map(100, 200, [(50, 40, 150, 60, 0.9)])
    slow = decode(prob, Params(score_mode="slow"))
    assert len(slow) == 1
    assert slow[0].score == pytest.approx(0.9 * 100 * 20 / (101 * 21), abs=1e-3)


def test_non_2d_map_is_rejected() -> None:
    with pytest.raises(InputError, match="H×W"):
        decode(np.zeros((1, 10, 10), dtype=np.float32), Params())


def test_to_detection_maps_back_through_the_transform_and_clips() -> None:
    quad = np.array([[-4, 10], [40, 10], [40, 30], [-4, 30]], dtype=np.float32)
    tf = Transform(2.0, 0.5, 0.0, 0.0, model_w=64, model_h=32, image_w=32, image_h=64)
    det = to_detection(TextBox(quad, 0.7), tf, "text")
    assert det.label == "text" and det.score == pytest.approx(0.7)
    assert det.box == pytest.approx((0.0, 20.0, 20.0, 60.0))  # x / 2 clipped at 0, y / 0.5
    assert det.polygon == [(0.0, 20.0), (20.0, 20.0), (20.0, 60.0), (0.0, 60.0)]


def test_params_forbid_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        Params.model_validate({"tresh": 0.3})
    with pytest.raises(ValidationError):
        Params(score_mode="median")


def test_zoo_manifest_matches_rapidocr_config() -> None:
    m = read_manifest(ZOO_FILE)
    _, params = decoder_entry(m, "ppocr-det")
    assert params == Params(
        thresh=0.3, box_thresh=0.5, max_candidates=1000, unclip_ratio=1.6,
        use_dilation=True, score_mode="fast", min_size=3,
    )  # fmt: skip
    assert m.input.kind == "image"
    assert (m.input.layout, m.input.color, m.input.resize) == ("NCHW", "BGR", "limit_side")
    assert (m.input.limit_side_len, m.input.limit_type, m.input.multiple_of) == (736, "min", 32)
    assert m.input.mean == (127.5, 127.5, 127.5) and m.input.std == (127.5, 127.5, 127.5)
    assert m.labels == ["text"]


def test_unknown_decoder_key_names_the_field() -> None:
    data = read_manifest(ZOO_FILE).model_dump()
    data["decoder"]["unclip"] = 2.0
    with pytest.raises(ManifestError, match=r"decoder\.unclip"):
        decoder_entry(Manifest.model_validate(data), "m.json")


class FakeBackend:
    """Returns a fixed map; records the input it was fed."""

    name = "fake"

    def __init__(self, out: np.ndarray) -> None:
        self.out = out
        self.fed: list[np.ndarray] = []

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("x", (-1, 3, -1, -1), np.dtype(np.float32))]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("y", (-1, 1, -1, -1), np.dtype(np.float32))]

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        self.fed.append(feeds["x"])
        return [self.out]

    def close(self) -> None:
        pass


def test_detector_maps_map_pixels_to_image_pixels() -> None:
    # A 368×368 image is scaled to 736×736 (limit_side 736, type min): factor 2.
    prob = blob_map(736, 736, [(100, 200, 500, 260, 0.9)])
    backend = FakeBackend(prob[None, None])
    det = DBTextDetector(read_manifest(ZOO_FILE), backend, Params())
    out = det.detect(np.zeros((368, 368, 3), dtype=np.uint8))
    assert backend.fed[0].shape == (1, 3, 736, 736)
    assert backend.fed[0].min() == pytest.approx(-1.0)  # (0 - 127.5) / 127.5
    assert len(out) == 1
    d = 400 * 60 * 1.6 / (2 * (400 + 60))  # dilated rectangle x 100..500, y 200..260
    expected = ((100 - d) / 2, (200 - d) / 2, (500 + d) / 2, (260 + d) / 2)
    assert out[0].box == pytest.approx(expected, abs=0.6)
    assert set(det.times.ms) == {"pre", "invoke", "post"}
    det.score_threshold = 0.95
    assert det.detect(np.zeros((368, 368, 3), dtype=np.uint8)) == []


def test_detector_rejects_a_map_of_the_wrong_shape() -> None:
    det = DBTextDetector(
        read_manifest(ZOO_FILE), FakeBackend(np.zeros((1, 2, 32, 32), np.float32)), Params()
    )
    with pytest.raises(ModelError, match="1×1×H×W"):
        det.detect(np.zeros((32, 32, 3), dtype=np.uint8))
