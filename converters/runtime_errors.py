"""The exceptions a conversion step can raise at run time that are not the user's input:
onnxruntime's own (``Fail``, ``InvalidArgument``, ``RuntimeException``, … which derive from
``Exception`` directly), onnx's checker and shape inference, and ``RuntimeError``; and one
line that describes any of them."""

from __future__ import annotations

import onnx
import onnxruntime.capi.onnxruntime_pybind11_state as _ort_state


def _ort_errors() -> tuple[type[Exception], ...]:
    found = (getattr(_ort_state, name) for name in sorted(vars(_ort_state)))
    return tuple(t for t in found if isinstance(t, type) and issubclass(t, Exception))


RUNTIME_ERRORS: tuple[type[Exception], ...] = (
    *_ort_errors(),
    onnx.checker.ValidationError,
    onnx.shape_inference.InferenceError,
    RuntimeError,
)
# what a conversion step may raise and still be reported as one line: the above, or memory
FAILURES: tuple[type[BaseException], ...] = (*RUNTIME_ERRORS, MemoryError)


def describe(exc: BaseException, limit: int = 240) -> str:
    """``Type: first line`` of ``exc``, without onnxruntime's source-path prefixes."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # "... node. Name:'Mul.162' Status Message: /src/op_kernel.cc:87 ... : 1 : FAIL : why"
    if "Status Message:" in text:
        head, _, tail = text.partition("Status Message:")
        text = head.strip() + " " + tail.rsplit(" : ", 1)[-1].strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
