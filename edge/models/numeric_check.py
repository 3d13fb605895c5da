"""Accept a converted model by its numbers, not its bytes.

A conversion (tf2onnx on a TF.js graph) is not byte-identical between runs, so a
converted zoo model is checked by running it (onnxruntime, one thread) on a fixed
input tensor and comparing its outputs with a stored reference: for each output
its shape, its mean and 256 values at evenly spaced flat positions.

The input is a smooth, image-like pattern computed from a formula (no file, no
random generator whose stream could change between numpy releases), in the
range of a normalised image (about -2..2). ``scripts/make_zoo_reference.py``
writes the reference from a conversion that was checked by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError

SAMPLES = 256
PATTERN = "sin-v1"

Floats = npt.NDArray[np.float32]


class NumericCheckError(ModelError):
    """A converted model's outputs do not match the stored reference."""


def reference_input(shape: tuple[int, ...]) -> Floats:
    """The fixed input: ``2 sin(0.071 h + 0.043 w + 1.3 c) cos(0.017 (h - w) + 0.5 c)``
    over the last three axes (channel, row, column of an NCHW image), float32."""
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise ModelError(f"the numeric check needs a static 4-d input, got shape {shape}")
    _, c, h, w = shape
    cc, hh, ww = np.meshgrid(
        np.arange(c, dtype=np.float64),
        np.arange(h, dtype=np.float64),
        np.arange(w, dtype=np.float64),
        indexing="ij",
    )
    x = 2.0 * np.sin(0.071 * hh + 0.043 * ww + 1.3 * cc) * np.cos(0.017 * (hh - ww) + 0.5 * cc)
    return np.broadcast_to(x, shape).astype(np.float32)


def sample_positions(size: int) -> npt.NDArray[np.intp]:
    return np.unique(np.linspace(0, size - 1, min(SAMPLES, size)).round().astype(np.intp))


def run_model(path: Path) -> tuple[str, tuple[int, ...], dict[str, Floats]]:
    """Run ``path`` on the fixed input: (input name, input shape, outputs by name)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise NumericCheckError(f"{path}: onnxruntime cannot load it ({exc})") from None
    inp = sess.get_inputs()[0]
    shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
    x = reference_input(shape)
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, {inp.name: x})
    return (
        inp.name,
        shape,
        {n: np.asarray(v, np.float32) for n, v in zip(names, values, strict=True)},
    )


def summarize(path: Path) -> dict[str, Any]:
    """The reference document for ``path`` (what ``scripts/make_zoo_reference.py`` writes)."""
    name, shape, outs = run_model(path)
    return {
        "input": {"name": name, "shape": list(shape), "pattern": PATTERN},
        "samples": SAMPLES,
        "outputs": {
            n: {
                "shape": list(v.shape),
                "mean": float(v.mean(dtype=np.float64)),
                "values": [float(f"{x:.7g}") for x in v.reshape(-1)[sample_positions(v.size)]],
            }
            for n, v in outs.items()
        },
    }


def check(path: Path, reference: Path, atol: float) -> float:
    """Raise ``NumericCheckError`` unless ``path``'s outputs match ``reference`` within
    ``atol``; return the largest difference found."""
    try:
        ref = json.loads(reference.read_text(encoding="utf-8"))
        ref_outputs: dict[str, Any] = ref["outputs"]
        ref_shape = tuple(ref["input"]["shape"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{reference}: not a numeric-check reference ({exc})") from None
    _, shape, outs = run_model(path)
    where = f"{path.name}: numeric check against {reference.name} failed"
    if shape != ref_shape:
        raise NumericCheckError(f"{where}: input shape is {shape}, expected {ref_shape}")
    worst = 0.0
    for name, r in ref_outputs.items():
        got = outs.get(name)
        if got is None:
            raise NumericCheckError(f"{where}: no output {name!r} (the model has {sorted(outs)})")
        if list(got.shape) != r["shape"]:
            raise NumericCheckError(
                f"{where}: output {name!r} has shape {list(got.shape)}, expected {r['shape']}"
            )
        sampled = got.reshape(-1)[sample_positions(got.size)].astype(np.float64)
        diff = float(np.max(np.abs(sampled - np.asarray(r["values"], np.float64))))
        diff = max(diff, abs(float(got.mean(dtype=np.float64)) - float(r["mean"])))
        if not math.isfinite(diff) or diff > atol:
            raise NumericCheckError(
                f"{where}: output {name!r} differs by up to {diff:.3g} (allowed {atol:g})"
            )
        worst = max(worst, diff)
    return worst
