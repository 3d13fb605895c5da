"""`edge detect` and `edge doctor` say which provider or delegate really runs each model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import skimage.data

from tests.conftest import FIXTURES

EDGE = [sys.executable, "-m", "edge.cli.main"]


def edge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_detect_json_has_the_accelerator(astronaut: Path) -> None:
    proc = edge("detect", "blazeface-short", astronaut, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["detections"]
    assert doc["accelerator"] == {
        "backend": "tflite",
        "requested": [],
        "active": "XNNPACK",
        "fallback": None,
    }


def test_detect_audio_json_has_the_accelerator() -> None:
    proc = edge("detect", "silero-vad", FIXTURES / "speech_16k.wav", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accelerator"]["active"] == "CPUExecutionProvider"


def test_detect_with_a_delegate_that_cannot_load_falls_back(astronaut: Path) -> None:
    proc = edge("detect", "blazeface-short", astronaut, "--json", "--provider", "libedgetpu.so.1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout stays one JSON document
    acc = doc["accelerator"]
    assert acc["requested"] == ["libedgetpu.so.1"] and acc["active"] == "XNNPACK"
    assert "delegate 'libedgetpu.so.1' cannot be loaded" in acc["fallback"]
    assert doc["detections"]  # and the model still ran, on the CPU
    warnings = [ln for ln in proc.stderr.splitlines() if "libedgetpu.so.1" in ln]
    assert len(warnings) == 1 and "running on XNNPACK" in warnings[0], proc.stderr


def test_detect_strict_refuses_in_one_line() -> None:
    proc = edge(
        "detect", "silero-vad", FIXTURES / "speech_16k.wav", "--provider",
        "CUDAExecutionProvider", "--accelerator-strict",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edge: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'CUDAExecutionProvider' is not in use" in errors[0]
    assert "install onnxruntime-gpu" in errors[0]


def test_doctor_json_lists_accelerators_and_what_each_zoo_model_runs_on() -> None:
    proc = edge("doctor", "--json", "--profile", "coral-dev-board")
    assert proc.returncode == 0, proc.stderr
    acc = json.loads(proc.stdout)["accelerators"]
    assert "CPUExecutionProvider" in acc["available"]["onnxruntime"]["providers"]
    delegates = acc["available"]["tflite"]["delegates"]
    assert delegates["XNNPACK"] is None  # built in
    assert "cannot be loaded" in delegates["libedgetpu.so.1"]  # no Edge TPU runtime here
    assert acc["profile"] == "coral-dev-board"
    face = acc["zoo"]["blazeface-short"]
    assert face["requested"] == ["libedgetpu.so.1"] and face["active"] == "XNNPACK"
    assert "libedgetpu.so.1" in face["fallback"]
    # The Coral profile runs TFLite: ONNX models keep their runtime's defaults.
    assert acc["zoo"]["silero-vad"]["active"] == "CPUExecutionProvider"
    assert acc["zoo"]["silero-vad"]["fallback"] is None


def test_doctor_text_names_what_runs() -> None:
    proc = edge("doctor")
    assert proc.returncode == 0, proc.stderr
    assert "blazeface-short" in proc.stdout and "tflite on XNNPACK" in proc.stdout
    assert "onnxruntime on CPUExecutionProvider" in proc.stdout
