"""TFLite bundles through onnx2tf (tool venv, ~2.6 GB from PyPI on first use), and the
Edge TPU profile refusing an op it cannot map.

Ground truth for the INT8 bundle: the ONNX FP32 model's boxes on held-out scenes; the
LiteRT-run INT8 model must find the same (F1 ≥ 0.95, the Pi 5 profile's gate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from converters.cli import main
from converters.errors import ToolUnavailableError
from converters.tflite import ensure_onnx2tf
from edge.detectors import load_detector
from edge.models.resolve import ResolvedModel
from tests.fixtures.convert_scenes import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, write_scenes


def test_edge_tpu_profile_names_unsupported_op(
    zoo_model: Callable[[str], ResolvedModel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo_model("ppocr-det")
    calib = write_scenes(tmp_path / "calib", ("coffee",), 1, seed=1)[0].parent
    rc = main(["ppocr-det", "--profile", "coral-dev-board", "--calibration", str(calib),
               "-o", str(tmp_path / "out")])  # fmt: skip
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    # PP-OCRv4's SE blocks use HardSigmoid and Div, which the Edge TPU compiler does not map
    assert len(err) == 1, err
    assert "cannot run ops Div (node 'p2o.Div.0'), HardSigmoid (node" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tflite_int8_bundle_agrees_with_onnx_fp32(
    zoo_model: Callable[[str], ResolvedModel], tmp_path: Path
) -> None:
    try:
        ensure_onnx2tf()
    except ToolUnavailableError as exc:
        pytest.skip(f"onnx2tf tool environment unavailable: {exc}")
    zoo_model("ppocr-det")
    calib = write_scenes(tmp_path / "calib", CALIBRATION_PHOTOS, 1, seed=1)[0].parent
    evals = write_scenes(tmp_path / "eval", EVALUATION_PHOTOS, 2, seed=2)
    out = tmp_path / "pi5"
    rc = main(["ppocr-det", "--profile", "raspberry-pi-5", "--calibration", str(calib),
               "--eval", str(evals[0].parent), "-o", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task_metric"] == "box_f1" and report["samples"] == len(evals)
    assert report["task_value"] >= 0.95, report["per_sample"]
    assert report["size_ratio"] <= 0.35
    model, det = load_detector(str(out))  # the bundle loads as written, in LiteRT
    try:
        assert model.manifest.format == "tflite" and model.path.suffix == ".tflite"
        from edge.media.image import read_image

        assert det.detect(read_image(evals[0])), "no text found by the TFLite bundle"  # type: ignore[union-attr]
    finally:
        det.close()
