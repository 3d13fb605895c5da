"""The yolo decoder's mechanics on tiny ONNX graphs with fixed outputs (each layout),
through the real loader and onnxruntime; the letterbox options; class-aware NMS.

Behaviour on a real export: tests/integration/test_yolo_doclaynet.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.detectors import load_detector
from edge.detectors.nms import batched_nms
from edge.detectors.preprocess import ImagePreprocessor
from edge.errors import ManifestError
from edge.models.manifest import ImageInput
from edge.runtime.base import TensorSpec
from tests.unit.det_graphs import manifest_for

F32 = np.dtype(np.float32)
LABELS = ["a", "b"]
# rows: cx, cy, w, h, score a, score b (64×64 input pixels)
ROWS = np.array(
    [
        [20, 20, 10, 10, 0.9, 0.0],  # a, best
        [21, 20, 10, 10, 0.8, 0.1],  # a, overlaps the first (IoU 0.82): suppressed
        [21, 20, 10, 10, 0.0, 0.7],  # b, overlaps the first as much: kept unless agnostic
        [50, 50, 8, 8, 0.1, 0.2],  # b, below the 0.25 threshold
    ],
    np.float32,
)
CLASS_AWARE = [("a", 0.9, (15, 15, 25, 25)), ("b", 0.7, (16, 15, 26, 25))]


def _run(
    tmp_path: Path,
    out: npt.NDArray[np.float32],
    decoder: dict[str, Any],
    image: tuple[int, int] = (64, 64),
    labels: list[str] = LABELS,
    **input_fields: Any,
) -> list[tuple[str, float, tuple[float, ...]]]:
    path = manifest_for(tmp_path / "m", {"output0": out}, {"type": "yolo", **decoder}, labels,
                        **input_fields)  # fmt: skip
    _, det = load_detector(str(path))
    dets = det.detect(np.zeros((image[1], image[0], 3), np.uint8))
    det.close()
    return [(d.label, round(d.score, 4), tuple(round(v, 3) for v in d.box)) for d in dets]


@pytest.mark.parametrize(
    ("layout", "tensor"),
    [
        ("yolov8", ROWS.T[None]),  # [1, 4+nc, N]
        ("yolov8_transposed", ROWS[None]),  # [1, N, 4+nc]
    ],
)
@pytest.mark.parametrize("named", [True, False])
def test_v8_layouts_explicit_and_auto(
    tmp_path: Path, layout: str, tensor: npt.NDArray[np.float32], named: bool
) -> None:
    decoder = {"layout": layout} if named else {}
    assert _run(tmp_path, tensor, decoder) == CLASS_AWARE


def test_class_agnostic_nms_and_max_detections(tmp_path: Path) -> None:
    out = ROWS.T[None]
    assert _run(tmp_path, out, {"nms": {"class_agnostic": True}}) == CLASS_AWARE[:1]
    assert _run(tmp_path, out, {"nms": {"max_detections": 1}}) == CLASS_AWARE[:1]


def test_v5_scores_objectness_times_class(tmp_path: Path) -> None:
    obj = np.array([[1.0], [1.0], [1.0], [1.0], [0.5]], np.float32)
    extra = np.array([[40, 40, 6, 6, 0.0, 0.9]], np.float32)  # 0.5 × 0.9 = 0.45
    rows = np.concatenate([ROWS, extra])
    v5 = np.concatenate([rows[:, :4], obj, rows[:, 4:]], axis=1)[None]
    got = _run(tmp_path, v5, {})  # auto: [1, N, 5+nc]
    assert got == [*CLASS_AWARE, ("b", 0.45, (37, 37, 43, 43))]


def test_yolox_grid_decoded_with_strides(tmp_path: Path) -> None:
    """64×64, strides 8/16/32: N = 64 + 16 + 4. Row 64 + 2·4 + 1 is the stride-16 cell
    (col 1, row 2): centre ((1, 2) + (0.5, 0.25)) × 16 = (24, 36), size e^0 × 16."""
    raw = np.zeros((84, 7), np.float32)
    raw[73] = [0.5, 0.25, 0.0, 0.0, 0.9, 0.0, 1.0]
    got = _run(tmp_path, raw[None], {"layout": "yolox", "strides": [8, 16, 32]})
    assert got == [("b", 0.9, (16.0, 28.0, 32.0, 44.0))]


def test_normalized_boxes(tmp_path: Path) -> None:
    rows = ROWS.copy()
    rows[:, :4] /= 64
    assert _run(tmp_path, rows.T[None], {"normalized": True}) == CLASS_AWARE


@pytest.mark.parametrize(("align", "y"), [("center", 0.0), ("top_left", 32.0)])
def test_boxes_are_un_letterboxed(tmp_path: Path, align: str, y: float) -> None:
    """A 128×64 image in a 64×64 input: scale 0.5, 16 rows of padding above when centred.
    Model box (16, 16)-(32, 32) → image x = 16/0.5, y = (16 - pad)/0.5."""
    rows = np.array([[24, 24, 16, 16, 0.9, 0.0]], np.float32)
    got = _run(tmp_path, rows.T[None], {}, image=(128, 64), align=align, pad_value=114)
    assert got == [("a", 0.9, (32.0, y, 64.0, y + 32.0))]


# --- bad manifests: one line, naming the output and the shape expected -----------------


def test_label_count_not_matching_the_output_shape(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        _run(tmp_path, ROWS.T[None], {"layout": "yolov8"}, labels=["a", "b", "c"])
    msg = str(err.value)
    assert "\n" not in msg
    assert "output 'output0' has shape [1, 6, 4]" in msg
    assert "expects [1, 7, N]" in msg and "nc=3 (from labels)" in msg


def test_auto_layout_that_fits_no_family(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"expects \[1, 9, N\] \(yolov8\), \[1, N, 9\]"):
        _run(tmp_path, ROWS.T[None], {}, labels=[str(i) for i in range(5)])


def test_labels_not_matching_num_classes(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"labels has 2 entries, decoder\.num_classes is 3"):
        _run(tmp_path, ROWS.T[None], {"num_classes": 3})


def test_yolox_strides_not_matching_the_rows(tmp_path: Path) -> None:
    raw = np.zeros((1, 80, 7), np.float32)
    with pytest.raises(ManifestError, match=r"make N=84, expected \[1, 84, 7\]"):
        _run(tmp_path, raw, {"layout": "yolox"})


def test_unknown_decoder_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"decoder\.nms\.iou"):
        _run(tmp_path, ROWS.T[None], {"nms": {"iou": 0.5}})


# --- letterbox options (Ultralytics' LetterBox: centred, 114, scale-up off) -------------


def _pre(**fields: Any) -> ImagePreprocessor:
    spec = ImageInput(layout="NCHW", resize="letterbox", interpolation="linear", **fields)
    return ImagePreprocessor(spec, TensorSpec("images", (1, 3, 32, 32), F32))


def test_letterbox_pad_value_and_alignment() -> None:
    img = np.full((10, 20, 3), 200, np.uint8)  # 20×10 → 32×16, 8 rows of padding each side
    t, tr = _pre(pad_value=114)(img)
    assert (t[0, :, :8] == 114).all() and (t[0, :, 8:24] == 200).all()
    assert (t[0, :, 24:] == 114).all() and (tr.pad_x, tr.pad_y) == (0, 8)
    t, tr = _pre(pad_value=114, align="top_left")(img)
    assert (t[0, :, :16] == 200).all() and (t[0, :, 16:] == 114).all() and tr.pad_y == 0


def test_letterbox_without_scale_up_keeps_small_images() -> None:
    img = np.full((10, 20, 3), 50, np.uint8)
    t, tr = _pre(pad_value=114, scale_up=False)(img)
    assert (tr.scale_x, tr.pad_x, tr.pad_y) == (1.0, 6, 11)
    assert (t[0, :, 11:21, 6:26] == 50).all() and t[0].sum() == 50 * 600 + 114 * 3 * (1024 - 200)


def test_batched_nms_keeps_overlaps_of_other_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 0, 1], np.intp)
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 2]
    assert batched_nms(boxes, scores, classes, 0.5, class_agnostic=True).tolist() == [0]
    assert batched_nms(boxes, scores, classes, 0.9).tolist() == [0, 1, 2]
