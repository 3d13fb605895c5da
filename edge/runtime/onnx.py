"""onnxruntime backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError, ModelError
from edge.runtime.base import Array, BackendOptions, TensorSpec

_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
        ) from exc
    return onnxruntime


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
    dtype = np.dtype(_ORT_DTYPES.get(arg.type, np.float32))
    return TensorSpec(name=arg.name, shape=shape, dtype=dtype)


class OnnxBackend:
    """One ``InferenceSession``; ``threads`` sets intra-op threads, inter-op stays 1."""

    name = "onnxruntime"

    def __init__(self, path: Path, options: BackendOptions) -> None:
        ort = _import_ort()
        if not path.is_file():
            raise ModelError(
                f"{path}: model file not found; check the path or run `edge models pull`"
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, options.threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        available = set(ort.get_available_providers())
        wanted = [p for p in options.providers if p in available] or ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=wanted)
        except Exception as exc:  # onnxruntime raises several unrelated types here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{path}: onnxruntime cannot load this model ({first[:200]}); "
                "is it a valid, complete .onnx file?"
            ) from exc
        self.providers: list[str] = list(self._session.get_providers())
        self.inputs = [_spec(a) for a in self._session.get_inputs()]
        self.outputs = [_spec(a) for a in self._session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        result: list[Array] = self._session.run(self._output_names, feeds)
        return result

    def close(self) -> None:
        del self._session
