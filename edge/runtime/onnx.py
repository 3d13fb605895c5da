"""onnxruntime backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError, ModelError
from edge.runtime.base import (
    AcceleratorInfo,
    Array,
    BackendOptions,
    TensorSpec,
    one_line,
    settle_fallback,
)

CPU = "CPUExecutionProvider"

# How to get an execution provider that this onnxruntime lacks.
_INSTALL = {
    "CUDAExecutionProvider": "install onnxruntime-gpu and the CUDA and cuDNN libraries it needs",
    "TensorrtExecutionProvider": "install onnxruntime-gpu and the CUDA, cuDNN and TensorRT "
    "libraries it needs",
    "OpenVINOExecutionProvider": "install onnxruntime-openvino",
    "DmlExecutionProvider": "install onnxruntime-directml",
    "QNNExecutionProvider": "install onnxruntime-qnn",
}

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


def provider_fix(names: list[str]) -> str:
    """How to make the providers ``names`` available, for an error message."""
    if "TensorrtExecutionProvider" in names:  # its fix covers CUDA's too
        names = [n for n in names if n != "CUDAExecutionProvider"]
    fixes = dict.fromkeys(
        _INSTALL.get(n, f"install an onnxruntime build with {n}")
        if n.endswith("ExecutionProvider")
        else f"name the provider as onnxruntime does ({n!r} is not one; e.g. CUDAExecutionProvider)"
        for n in names
    )
    return "; ".join(fixes)


def _missing_reason(ort: Any, name: str, available: list[str]) -> str:
    if name not in ort.get_all_providers():
        return "not an onnxruntime execution provider name (check the spelling)"
    return f"not in this onnxruntime build, which has {', '.join(available)}"


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
        requested = tuple(options.providers)
        available = list(ort.get_available_providers())
        # Asking onnxruntime for a provider it lacks only warns and drops it, so the
        # missing ones are found here, with the reason.
        missing = {p: _missing_reason(ort, p, available) for p in requested if p not in available}
        if missing and options.strict:  # refuse before spending time on a session
            self._settle(path, requested, CPU, missing, strict=True)
        wanted = [p for p in requested if p in available] or [CPU]
        session, failed = self._open(ort, path, so, wanted)
        if session is None:  # a provider made the session fail: the CPU alone decides
            session, _ = self._open(ort, path, so, [CPU])
        self._session = session
        self.providers: list[str] = list(session.get_providers())
        # An available provider can also fail to initialise (CUDA libraries missing, no
        # GPU) with onnxruntime logging it and carrying on without it, so what the session
        # really uses is read back from it, not assumed.
        for p in requested:
            if p not in self.providers and p not in missing:
                missing[p] = failed or "onnxruntime could not initialise it (see its log)"
        active = self.providers[0] if self.providers else CPU
        self.accelerator = self._settle(path, requested, active, missing, options.strict)
        self.inputs = [_spec(a) for a in self._session.get_inputs()]
        self.outputs = [_spec(a) for a in self._session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    @staticmethod
    def _open(ort: Any, path: Path, so: Any, providers: list[str]) -> tuple[Any, str | None]:
        """The session and ``None``, or, where a provider other than the CPU made it fail,
        ``(None, reason)``; a model the CPU cannot load either is a ``ModelError``."""
        try:
            # enable_fallback=0: onnxruntime's own retry prints a banner on stdout (which
            # would corrupt `edge detect --json`) and hides the reason; it is done here.
            return ort.InferenceSession(
                str(path), sess_options=so, providers=providers, enable_fallback=0
            ), None
        except Exception as exc:  # onnxruntime raises several unrelated types here
            if providers != [CPU]:
                return None, f"it failed to start ({one_line(exc)})"
            raise ModelError(
                f"{path}: onnxruntime cannot load this model ({one_line(exc)}); "
                "is it a valid, complete .onnx file?"
            ) from exc

    def _settle(
        self,
        path: Path,
        requested: tuple[str, ...],
        active: str,
        missing: dict[str, str],
        strict: bool,
    ) -> AcceleratorInfo:
        by_reason: dict[str, list[str]] = {}
        for p, why in missing.items():
            by_reason.setdefault(why, []).append(repr(p))
        reason = "; ".join(
            f"execution provider {ps[0]} is not in use: {why}"
            if len(ps) == 1
            else f"execution providers {', '.join(ps)} are not in use: {why}"
            for why, ps in by_reason.items()
        )
        info = AcceleratorInfo(self.name, requested, active, reason or None)
        settle_fallback(path, info, strict=strict, fix=provider_fix(list(missing)))
        return info

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        result: list[Array] = self._session.run(self._output_names, feeds)
        return result

    def close(self) -> None:
        del self._session
