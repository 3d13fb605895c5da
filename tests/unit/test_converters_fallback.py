"""--auto-fallback's failure handling and determinism, and the gate's metric choice, on the
tiny CNN (``tests/unit/conv_graphs.py``). The PP-OCR runs (crash, hash seed, memory) are in
``tests/integration/test_convert_fallback.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnxruntime
import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph

from converters import fallback
from converters.calibration import load_set
from converters.cli import main
from tests.unit.conv_graphs import calibration_npy, manifest_for, tiny_cnn
from tests.unit.test_converters_cli import _custom_profile

REPO = Path(__file__).resolve().parents[2]
# what onnxruntime raised in qdq_loss_debug on ppocr-det (issue 10)
SHAPE_MISMATCH = (
    "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Mul node. "
    "Name:'p2o.Mul.162' Status Message: /onnxruntime_src/onnxruntime/core/framework/"
    "op_kernel.cc:87 [ONNXRuntimeError] : 1 : FAIL : Shape mismatch attempting to re-use "
    "buffer. {1,96,46,46} != {1,96,184,184}."
)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    model = tiny_cnn(tmp_path / "tiny.onnx", opset=13)
    manifest_for(model)
    return model, calibration_npy(tmp_path / "calib.npy")


def _strict(tmp_path: Path) -> Path:
    # INT8 reaches cosine ~0.999 on the tiny CNN: only fallback rounds get near 0.9999999
    return _custom_profile(tmp_path, min_cosine=0.9999999, max_size_ratio=3.0)


def _args(tiny: tuple[Path, Path], profile: Path, out: Path) -> list[str]:
    model, calib = tiny
    return [str(model), "--profile", str(profile), "--calibration", str(calib), "-o", str(out)]


def _set_decoder(model: Path, task: str, decoder: dict[str, Any]) -> None:
    path = model.with_name("manifest.json")
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc | {"task": task, "decoder": decoder}))


def test_bad_decoder_parameter_is_a_one_line_error(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # was: a broad except in is_image_detector quietly gated on tensor cosine instead
    _set_decoder(tiny[0], "detect", {"type": "db_text", "thresh": 1.5})
    profile = _custom_profile(tmp_path, max_size_ratio=3.0, min_task_metric=0.5)
    assert main(_args(tiny, profile, tmp_path / "b")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder.thresh" in err[0], err
    assert not (tmp_path / "b").exists()


def test_detect_without_image_decoder_records_metric_fallback(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_decoder(tiny[0], "detect", {"type": "my_custom_boxes"})
    profile = _custom_profile(tmp_path, max_size_ratio=3.0, min_task_metric=0.5)
    assert main(_args(tiny, profile, tmp_path / "b")) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["task_metric"] in ("cosine", "top1_agreement")  # not box_f1
    assert "'my_custom_boxes' is not a known image decoder" in report["metric_fallback"]
    assert "metric fallback" in (tmp_path / "b" / "report.md").read_text()
    assert "metric fallback:" in capsys.readouterr().err


def test_classifier_has_no_metric_fallback(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    profile = _custom_profile(tmp_path, max_size_ratio=3.0, min_task_metric=0.5)
    assert main(_args(tiny, profile, tmp_path / "b")) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["metric_fallback"] == "" and report["auto_fallback"] == {}


def test_debug_step_failure_falls_back_to_weight_ranking(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    real = onnxruntime.InferenceSession

    def session(model: Any, sess_options: Any = None, **kw: Any) -> Any:
        # only the debugging session turns the memory pattern off; it fails as on PP-OCR
        if sess_options is not None and not sess_options.enable_mem_pattern:
            raise Fail(SHAPE_MISMATCH)
        return real(model, sess_options=sess_options, **kw)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    rc = main([*_args(tiny, _strict(tmp_path), tmp_path / "b"), "--auto-fallback"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 3)  # it went on; whether the coarse ranking reaches the gate is secondary
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    fb = report["auto_fallback"]
    assert fb["rounds"][0]["ranked_by"] == "weight_sqnr"
    assert report["excluded_nodes"][:2] == list(fb["rounds"][0]["scores_db"])
    assert any("Shape mismatch attempting to re-use buffer" in n for n in fb["notes"]), fb
    assert "warning: --auto-fallback: activation debugging failed (Fail:" in err
    assert "ranked by weight error instead" in err


def test_runtime_failure_in_a_fallback_round_is_one_line(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import onnxruntime.quantization as q

    real = q.quantize_static

    def quantize_static(*args: Any, nodes_to_exclude: Any = None, **kw: Any) -> None:
        if nodes_to_exclude:  # the second round: onnxruntime rejects the graph
            raise InvalidGraph("[ONNXRuntimeError] : 10 : INVALID_GRAPH : node conv1 bad")
        real(*args, nodes_to_exclude=nodes_to_exclude, **kw)

    monkeypatch.setattr(q, "quantize_static", quantize_static)
    rc = main([*_args(tiny, _strict(tmp_path), tmp_path / "b"), "--auto-fallback"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    last = [line for line in err if line.startswith("edge-convert: error:")]
    assert len(last) == 1 and not any("Traceback" in line for line in err), err
    assert "quantization with 2 node(s) kept in float failed (InvalidGraph:" in last[0]
    assert "rerun without --auto-fallback" in last[0]


def _fallback_run(
    tiny: tuple[Path, Path], profile: Path, out: Path, hash_seed: str
) -> dict[str, Any]:
    env = os.environ | {"PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "converters.cli", *_args(tiny, profile, out), "--auto-fallback",
         "--fallback-rounds", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 3), proc.stderr
    doc: dict[str, Any] = json.loads((out / "report.json").read_text())
    return {k: doc[k] for k in ("excluded_nodes", "task_value", "cosine_min", "auto_fallback")}


@pytest.mark.slow
def test_auto_fallback_same_result_for_any_hash_seed(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    profile = _strict(tmp_path)
    a = _fallback_run(tiny, profile, tmp_path / "a", "1")
    b = _fallback_run(tiny, profile, tmp_path / "b", "2")
    assert a == b
    assert a["auto_fallback"]["seed"] == fallback.SEED and a["excluded_nodes"]


def test_debug_samples_are_a_fixed_draw(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.onnx")
    from converters.convert import calib_inputs

    calib = load_set(calibration_npy(tmp_path / "c.npy", n=16), None, calib_inputs(model))
    picks = fallback.pick_samples(calib)
    assert picks == fallback.pick_samples(calib) and len(picks) == fallback.DEBUG_SAMPLES
    assert picks == sorted(set(picks)) and fallback.pick_samples(calib, seed=1) != picks
