"""Tiny ONNX graphs for the converter unit tests, built with ``onnx.helper``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_cnn(path: Path, opset: int = 13, extra_op: str | None = None) -> Path:
    """x[1,3,8,8] → Conv(8) → Relu → Conv(4) → GlobalAveragePool → Flatten → y[1,4]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
    ]
    last = "f"
    if extra_op is not None:
        nodes.append(helper.make_node(extra_op, ["f"], ["e"], name=f"{extra_op.lower()}1"))
        last = "e"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=[w1, b1, w2],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def manifest_for(model: Path) -> Path:
    """A manifest beside ``model``: an 8×8 NCHW RGB image input scaled to 0..1."""
    import hashlib

    doc = {
        "name": "tiny", "version": "1", "task": "classify", "format": "onnx",
        "file": model.name, "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "license": "MIT",
        "input": {"kind": "image", "width": 8, "height": 8, "layout": "NCHW", "color": "RGB",
                  "resize": "stretch", "mean": [0, 0, 0], "std": [255, 255, 255]},
        "decoder": {"type": "raw"},
    }  # fmt: skip
    path = model.with_name("manifest.json")
    path.write_text(json.dumps(doc))
    return path


def calibration_npy(path: Path, n: int = 16, shape: tuple[int, ...] = (3, 8, 8)) -> Path:
    rng = np.random.default_rng(1)
    np.save(path, rng.uniform(0, 1, (n, *shape)).astype(np.float32))
    return path
