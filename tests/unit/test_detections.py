"""The ``detections`` decoder (graphs that output final boxes) on tiny ONNX graphs with
fixed outputs: TFLite_Detection_PostProcess, end-to-end [1, N, 6], TF OD API names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.detectors import load_detector
from edge.errors import ManifestError
from tests.unit.det_graphs import manifest_for

Outs = dict[str, npt.NDArray[np.float32]]
LABELS = ["person", "car", "dog"]
# two boxes in a 64×64 input; the third row is padding past ``count``
YXYX = np.array([[[0.25, 0.125, 0.5, 0.375], [0.5, 0.5, 1.0, 0.75], [0, 0, 1, 1]]], np.float32)
CLASSES = np.array([[2, 0, 1]], np.float32)
SCORES = np.array([[0.9, 0.6, 0.95]], np.float32)
COUNT = np.array([2], np.float32)
# a 128×64 image letterboxed into 64×64: scale 0.5, 16 rows of padding above
EXPECT = [("dog", 0.9, (16.0, 0.0, 48.0, 32.0)), ("person", 0.6, (64.0, 32.0, 96.0, 64.0))]


def _run(tmp_path: Path, outs: Outs, decoder: dict[str, Any], labels: list[str] = LABELS) -> Any:
    path = manifest_for(tmp_path / "m", outs, {"type": "detections", **decoder}, labels)
    _, det = load_detector(str(path))
    dets = det.detect(np.zeros((64, 128, 3), np.uint8))
    det.close()
    return [(d.label, round(d.score, 4), tuple(round(v, 3) for v in d.box)) for d in dets]


def test_tflite_postprocess(tmp_path: Path) -> None:
    outs = {"boxes": YXYX, "classes": CLASSES, "scores": SCORES, "count": COUNT}
    assert _run(tmp_path, outs, {"style": "tflite_postprocess"}) == EXPECT


def test_tf_od_api_by_name_with_one_based_classes(tmp_path: Path) -> None:
    outs = {  # any output order: found by name
        "num_detections": COUNT,
        "detection_scores": SCORES,
        "detection_classes": CLASSES + 1,
        "detection_boxes": YXYX,
    }
    assert _run(tmp_path, outs, {"style": "tf_od_api"}) == EXPECT


def _e2e(normalized: bool) -> npt.NDArray[np.float32]:
    xyxy = YXYX[0, :, [1, 0, 3, 2]].T * (1 if normalized else 64)
    rows = np.concatenate([xyxy, SCORES.T, CLASSES.T], axis=1)
    rows[2, 4] = 0.1  # an end-to-end export pads with low scores
    return rows[None].astype(np.float32)


@pytest.mark.parametrize("normalized", [False, True])
def test_end_to_end(tmp_path: Path, normalized: bool) -> None:
    decoder = {"style": "end_to_end", "normalized": normalized}
    assert _run(tmp_path, {"output0": _e2e(normalized)}, decoder) == EXPECT


def test_max_detections_keeps_the_best(tmp_path: Path) -> None:
    decoder = {"style": "end_to_end", "max_detections": 1}
    assert _run(tmp_path, {"output0": _e2e(False)}, decoder) == EXPECT[:1]


def test_end_to_end_shape_mismatch_names_the_output(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        _run(tmp_path, {"output0": np.zeros((1, 5, 7), np.float32)}, {"style": "end_to_end"})
    msg = str(err.value)
    assert "output 'output0' (boxes) has shape [1, 5, 7]" in msg
    assert "expects [1, N, 6]" in msg and "\n" not in msg


def test_tflite_shapes_checked_per_output(tmp_path: Path) -> None:
    outs = {"boxes": YXYX, "classes": CLASSES[:, :2], "scores": SCORES, "count": COUNT}
    with pytest.raises(ManifestError, match=r"output 'classes' \(classes\) has shape \[1, 2\].*"
                       r"expects \[1, 3\] \(one per box\)"):  # fmt: skip
        _run(tmp_path, outs, {"style": "tflite_postprocess"})


def test_tf_od_api_missing_output_name(tmp_path: Path) -> None:
    outs = {"boxes": YXYX, "classes": CLASSES, "scores": SCORES, "count": COUNT}
    with pytest.raises(ManifestError, match=r"decoder\.boxes_output: no output named "
                       r"'detection_boxes'"):  # fmt: skip
        _run(tmp_path, outs, {"style": "tf_od_api"})
