"""ONNX recipes on a tiny CNN: op counts after quantization, FP32/INT8 agreement,
opset upgrade, fixed shapes, FP16, unsupported ops and non-ONNX input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from converters import onnx_recipes as recipes
from converters.calibration import load_set
from converters.convert import calib_inputs
from converters.errors import UnsupportedOpError
from edge.errors import ModelError
from edge.profiles import Recipe
from tests.unit.conv_graphs import calibration_npy, tiny_cnn

RECIPE = Recipe(format="onnx", precision="int8")


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {"x": x})[0])


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    src = tiny_cnn(tmp_path / "tiny.onnx", opset=12)
    return recipes.prepare(src, tmp_path / "prep.onnx", RECIPE, "NCHW", "tiny", "test")


def test_prepare_upgrades_opset_and_fixes_batch(prepared: Path) -> None:
    model = onnx.load(str(prepared))
    assert recipes.opset_of(model) == 13  # the source was opset 12; per-channel needs 13
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 8, 8]  # batch "N" fixed to 1


def test_static_int8_op_counts_and_agreement(prepared: Path, tmp_path: Path) -> None:
    calib = load_set(calibration_npy(tmp_path / "c.npy"), None, calib_inputs(prepared))
    out = recipes.quantize_static_int8(prepared, tmp_path / "q.onnx", calib, recipes.QuantOptions())
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["Conv"] == 2  # the convolutions stay, wrapped in Q/DQ pairs
    assert ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 5
    weight_dq = [
        n for n in onnx.load(str(out)).graph.node
        if n.op_type == "DequantizeLinear" and n.input[0].startswith("w1")
    ]  # fmt: skip
    assert weight_dq and any(a.name == "axis" for a in weight_dq[0].attribute)  # per-channel
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    ref, got = _run(prepared, x), _run(out, x)
    cos = float(ref.ravel() @ got.ravel() / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cos > 0.99, cos
    assert np.max(np.abs(ref - got)) < 0.1 * np.max(np.abs(ref))


def test_excluded_nodes_stay_float(prepared: Path, tmp_path: Path) -> None:
    calib = load_set(calibration_npy(tmp_path / "c.npy"), None, calib_inputs(prepared))
    conv1 = next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")
    opts = recipes.QuantOptions(nodes_to_exclude=(conv1,))
    out = recipes.quantize_static_int8(prepared, tmp_path / "q.onnx", calib, opts)
    g = onnx.load(str(out)).graph
    conv = next(n for n in g.node if n.name == conv1)
    producers = {o: n.op_type for n in g.node for o in n.output}
    assert producers.get(conv.input[1]) != "DequantizeLinear"  # its weight is not quantized


def test_fp16_keeps_float32_io(prepared: Path, tmp_path: Path) -> None:
    out = recipes.convert_fp16(prepared, tmp_path / "h.onnx")
    model = onnx.load(str(out))
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(prepared, x), rtol=2e-2, atol=2e-3)


def test_fix_input_shapes_sets_spatial_size(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_cnn(tmp_path / "t.onnx")))
    model = recipes.fix_input_shapes(model, (8, 8), "NCHW")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 8, 8]


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    src = tiny_cnn(tmp_path / "t.onnx", extra_op="Erf")
    recipe = Recipe(format="onnx", precision="int8", supported_ops=["Conv", "Relu", "Identity",
                    "GlobalAveragePool", "Flatten"])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"cannot run op Erf \(node 'erf1'\)"):
        recipes.prepare(src, tmp_path / "p.onnx", recipe, "NCHW", "t.onnx", "edge-tpu-like")


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("this is a text file, not a protobuf")
    with pytest.raises(ModelError, match="not an ONNX model"):
        recipes.load(bad)
