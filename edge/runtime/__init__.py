"""Inference backends behind one interface, in an explicit registry keyed by name."""

from __future__ import annotations

from pathlib import Path

from edge.errors import ModelError
from edge.runtime.base import (
    AcceleratorInfo,
    Backend,
    BackendFactory,
    BackendOptions,
    Quantization,
    TensorSpec,
    accelerator_fallbacks,
)
from edge.runtime.onnx import OnnxBackend
from edge.runtime.tflite import TFLiteBackend

BACKENDS: dict[str, BackendFactory] = {
    "onnxruntime": OnnxBackend,
    "tflite": TFLiteBackend,
}

# Which backend runs a model format by default.
FORMAT_BACKEND = {"onnx": "onnxruntime", "tflite": "tflite"}


def format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".tflite":
        return "tflite"
    raise ModelError(f"{path}: unknown model format {suffix!r}; expected .onnx or .tflite")


def load_backend(
    path: Path, options: BackendOptions | None = None, backend: str | None = None
) -> Backend:
    """Open ``path`` with ``backend`` (default: the one for its format)."""
    name = backend or FORMAT_BACKEND[format_of(path)]
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ModelError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}") from None
    return factory(path, options or BackendOptions())


__all__ = [
    "BACKENDS",
    "FORMAT_BACKEND",
    "AcceleratorInfo",
    "Backend",
    "BackendOptions",
    "Quantization",
    "TensorSpec",
    "accelerator_fallbacks",
    "format_of",
    "load_backend",
]
