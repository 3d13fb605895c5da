"""Both backends behind one interface, on tiny graphs built here (mechanics only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.errors import ModelError
from edge.runtime import BackendOptions, format_of, load_backend


def _add_one(path: Path, dynamic: bool = False) -> Path:
    dim: list[int | str] = ["n", 3] if dynamic else [1, 3]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dim)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dim)
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "g", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_onnx_backend_specs_and_run(tmp_path: Path) -> None:
    be = load_backend(_add_one(tmp_path / "a.onnx", dynamic=True), BackendOptions(threads=1))
    assert [s.name for s in be.inputs] == ["x"]
    assert be.inputs[0].shape == (-1, 3) and be.inputs[0].is_dynamic
    assert be.inputs[0].dtype == np.float32
    (out,) = be.run({"x": np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)})
    np.testing.assert_array_equal(out, [[2, 3, 4], [5, 6, 7]])
    be.close()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.onnx", b"", "onnxruntime cannot load"),
        ("random.onnx", bytes(range(256)) * 64, "onnxruntime cannot load"),
        ("empty.tflite", b"", "TFLite interpreter cannot load"),
        ("random.tflite", bytes(range(256)) * 64, "TFLite interpreter cannot load"),
    ],
)
def test_broken_model_files_give_one_clear_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as exc:
        load_backend(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_truncated_onnx(tmp_path: Path) -> None:
    full = _add_one(tmp_path / "full.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(ModelError, match="cannot load"):
        load_backend(cut)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        load_backend(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match=r"unknown model format '\.pt'"):
        format_of(tmp_path / "model.pt")
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'"):
        load_backend(tmp_path / "x.onnx", backend="tensorrt")
