"""Tiny ONNX graphs (``onnx.helper``) whose outputs are fixed tensors, plus a manifest
beside them: the box decoders' mechanics run through the real loader and onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.models.zoo import sha256_file


def const_graph(
    path: Path, outputs: dict[str, npt.NDArray[np.float32]], size: tuple[int, int] = (64, 64)
) -> Path:
    """images[1,3,H,W] → each output = its tensor + 0 × mean(images)."""
    h, w = size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for i, (name, arr) in enumerate(outputs.items()):
        inits.append(numpy_helper.from_array(arr.astype(np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [f"c{i}", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
    graph = helper.make_graph(
        nodes, "const",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        outs, initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def manifest_for(
    folder: Path,
    outputs: dict[str, npt.NDArray[np.float32]],
    decoder: dict[str, Any],
    labels: list[str],
    *,
    size: tuple[int, int] = (64, 64),
    **input_fields: Any,
) -> Path:
    """A model folder: ``model.onnx`` (a ``const_graph``) and its ``manifest.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = const_graph(folder / "model.onnx", outputs, size)
    doc = {
        "name": "tiny",
        "version": "1",
        "task": "detect",
        "format": "onnx",
        "file": "model.onnx",
        "sha256": sha256_file(model),
        "license": "MIT",
        "input": {"kind": "image", "layout": "NCHW", "std": [255, 255, 255], **input_fields},
        "decoder": decoder,
        "labels": labels,
    }
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder / "manifest.json"
