"""TFLite backend: LiteRT (``ai_edge_litert``), falling back to ``tflite_runtime``.

``tflite_runtime`` 2.14 (its last release) only works with numpy<2; LiteRT works
with both and is much faster on INT8 models, so it is always tried first.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError, ModelError
from edge.native_stderr import quiet_native_info
from edge.runtime.base import (
    AcceleratorInfo,
    Array,
    BackendOptions,
    Quantization,
    TensorSpec,
    one_line,
    settle_fallback,
)

DEFAULT = "XNNPACK"
"""What a TFLite interpreter without a delegate runs on: LiteRT and tflite_runtime apply
the XNNPACK CPU delegate by default to the ops it supports (builtin kernels do the rest)."""

CPU_NAMES = frozenset({"cpu", "xnnpack", "default"})
"""Provider names that mean the default CPU path rather than a delegate library."""

KNOWN_DELEGATES = (
    "libedgetpu.so.1",  # Coral Edge TPU
    "libtensorflowlite_gpu_delegate.so",  # OpenCL/OpenGL GPU
    "libvx_delegate.so",  # VeriSilicon NPU (NXP i.MX 8M Plus)
    "libQnnTFLiteDelegate.so",  # Qualcomm AI Engine
    "libarmnnDelegate.so",  # Arm NN (Mali GPU, Neon)
)
"""Delegate libraries ``edge doctor`` looks for."""

# The C entry points of a TFLite external delegate (external_delegate_interface.h).
_PLUGIN_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


def import_interpreter_module(prefer: str | None = None) -> tuple[str, Any]:
    """Return ``(library name, interpreter module)``; ``prefer`` forces one library."""
    order = ["ai_edge_litert", "tflite_runtime"]
    if prefer is not None:
        order = [prefer]
    for lib in order:
        try:
            if lib == "ai_edge_litert":
                from ai_edge_litert import interpreter as mod
            else:
                from tflite_runtime import interpreter as mod
        except ImportError:
            continue
        return lib, mod
    raise BackendUnavailableError(
        "no TFLite interpreter is installed: pip install ai-edge-litert "
        "(or tflite-runtime with numpy<2 where LiteRT has no wheel)"
    )


def delegate_fix(name: str) -> str:
    """How to make the delegate ``name`` loadable, for an error message."""
    if "edgetpu" in name.lower():
        return (
            "install the Edge TPU runtime (libedgetpu1-std from the Coral apt repository) "
            "and plug in the Edge TPU"
        )
    return f"install the library of delegate {name!r} or give its full path"


def probe_delegate(name: str) -> str | None:
    """Why the shared library ``name`` is not a loadable TFLite delegate, or ``None``.

    Checked with ctypes before ``load_delegate``: LiteRT's ``Delegate`` prints an
    "Exception ignored in __del__" traceback for a missing library or one without the
    plugin entry points, on top of raising.
    """
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        return f"cannot be loaded ({one_line(exc)})"
    absent = [s for s in _PLUGIN_SYMBOLS if not hasattr(lib, s)]
    if absent:
        return f"is not a TFLite delegate (the library has no {absent[0]})"
    return None


def load_delegates(mod: Any, names: tuple[str, ...]) -> tuple[list[Any], list[str], list[str]]:
    """Load each delegate library in ``names``: ``(delegates, their names, failures)``;
    the CPU names (``xnnpack``, ``cpu``, ``default``) are the default, not a library."""
    delegates: list[Any] = []
    loaded: list[str] = []
    failures: list[str] = []
    for name in names:
        if name.lower() in CPU_NAMES:
            continue
        why = probe_delegate(name)
        if why is None:
            try:
                delegates.append(mod.load_delegate(name))
                loaded.append(name)
                continue
            except (ValueError, RuntimeError, OSError, AttributeError) as exc:
                # ValueError: the library's create function failed (no device attached)
                why = f"failed to start ({one_line(exc)})"
        failures.append(f"delegate {name!r} {why}")
    return delegates, loaded, failures


def _spec(detail: dict[str, Any]) -> TensorSpec:
    sig = detail.get("shape_signature")
    shape_src = sig if sig is not None and len(sig) else detail["shape"]
    shape = tuple(int(d) for d in shape_src)
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = Quantization(float(scale), int(zero)) if scale else None
    return TensorSpec(
        name=str(detail["name"]), shape=shape, dtype=np.dtype(detail["dtype"]), quantization=quant
    )


class TFLiteBackend:
    """A TFLite interpreter. ``providers`` are delegate libraries (e.g. ``libedgetpu.so.1``)."""

    name = "tflite"

    def __init__(self, path: Path, options: BackendOptions, prefer: str | None = None) -> None:
        self.library, mod = import_interpreter_module(prefer)
        if not path.is_file():
            raise ModelError(
                f"{path}: model file not found; check the path or run `edge models pull`"
            )
        requested = tuple(options.providers)
        delegates, loaded, failures = load_delegates(mod, requested)
        fix = "; ".join(delegate_fix(n) for n in requested if n.lower() not in CPU_NAMES)
        if failures and options.strict:  # refuse before opening the model
            info = AcceleratorInfo(self.name, requested, DEFAULT, "; ".join(failures))
            settle_fallback(path, info, strict=True, fix=fix)
        threads = max(1, options.threads)
        self._open_args = (mod, path, threads, delegates or None)
        # -q: without LiteRT's "Created TensorFlow Lite XNNPACK delegate" (once a process)
        with quiet_native_info():
            try:
                self._interp = self._open()
            except (ValueError, RuntimeError) as exc:
                if not delegates:
                    raise self._model_error(path, exc) from exc
                # A delegate that loads can still refuse this model's graph
                # (ModifyGraphWithDelegate): the CPU alone says whether the model is bad.
                self._open_args = (mod, path, threads, None)
                try:
                    self._interp = self._open()
                except (ValueError, RuntimeError) as cpu_exc:
                    raise self._model_error(path, cpu_exc) from cpu_exc
                failures += [
                    f"delegate {n!r} cannot run this model ({one_line(exc)})" for n in loaded
                ]
                loaded = []
        active = "+".join(loaded) or DEFAULT
        self.accelerator = AcceleratorInfo(
            self.name, requested, active, "; ".join(failures) or None
        )
        settle_fallback(path, self.accelerator, strict=options.strict, fix=fix)
        in_details = self._interp.get_input_details()
        out_details = self._interp.get_output_details()
        self.inputs = [_spec(d) for d in in_details]
        self.outputs = [_spec(d) for d in out_details]
        self._in_index = {d["name"]: int(d["index"]) for d in in_details}
        self._out_index = [int(d["index"]) for d in out_details]

    @staticmethod
    def _model_error(path: Path, exc: BaseException) -> ModelError:
        return ModelError(
            f"{path}: the TFLite interpreter cannot load this model ({one_line(exc)}); "
            "is it a valid, complete .tflite file?"
        )

    def _open(self) -> Any:
        mod, path, threads, delegates = self._open_args
        interp = mod.Interpreter(
            model_path=str(path), num_threads=threads, experimental_delegates=delegates
        )
        interp.allocate_tensors()
        return interp

    def reset_state(self) -> None:
        """Recreate the interpreter, zeroing resource variables (``VAR_HANDLE``) that
        neither ``reset_all_variables()`` nor ``allocate_tensors()`` resets (~0.4 ms)."""
        self._interp = self._open()

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        interp = self._interp
        for name, value in feeds.items():
            interp.set_tensor(self._in_index[name], value)
        interp.invoke()
        return [interp.get_tensor(i) for i in self._out_index]

    def invoke_only(self) -> None:
        """Invoke on whatever input is set; for benchmarks of the bare interpreter."""
        self._interp.invoke()

    def close(self) -> None:
        del self._interp
