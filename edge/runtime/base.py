"""The one small interface every inference backend implements.

Tensors in, tensors out: a backend knows nothing of images, boxes or audio.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.errors import BackendUnavailableError

log = logging.getLogger("edge.runtime")


@dataclass(frozen=True, slots=True)
class Quantization:
    """Affine quantization of a tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, shape (``-1`` or ``None`` entries are dynamic), dtype and quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]
    quantization: Quantization | None = None

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """How to run a model: threads and the provider / delegate names to try, in order.

    ``strict``: refuse to open the model (``BackendUnavailableError``) when a requested
    provider or delegate cannot be used, instead of falling back to the CPU.
    """

    threads: int = 1
    providers: tuple[str, ...] = field(default_factory=tuple)
    strict: bool = False


@dataclass(frozen=True, slots=True)
class AcceleratorInfo:
    """What a backend really runs on, as opposed to what it was asked for.

    ``active`` is the provider or delegate in use: an onnxruntime execution provider
    (``"CPUExecutionProvider"``), a TFLite delegate library (``"libedgetpu.so.1"``) or
    ``"XNNPACK"`` (the CPU delegate TFLite applies by default). ``fallback`` says why a
    requested one is not in use; ``None`` when everything requested is in use.
    """

    backend: str
    requested: tuple[str, ...]
    active: str
    fallback: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "requested": list(self.requested),
            "active": self.active,
            "fallback": self.fallback,
        }


class FallbackCounter:
    """A process-wide count of backends opened on the CPU because a requested provider
    or delegate could not be used (thread-safe; read ``value``)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def increment(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        return self._value


accelerator_fallbacks = FallbackCounter()
"""Every fallback to the CPU since the process started; for metrics."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (runtimes put newlines in theirs)."""
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:limit]


def settle_fallback(path: Path, info: AcceleratorInfo, *, strict: bool, fix: str) -> None:
    """Apply the policy for an accelerator that is not in use: ``strict`` raises one line
    naming it and ``fix``; otherwise one warning line and ``accelerator_fallbacks`` + 1."""
    if info.fallback is None:
        return
    if strict:
        raise BackendUnavailableError(
            f"{path}: {info.fallback}; {fix}, or set accelerator_strict = false "
            "to fall back to the CPU"
        )
    accelerator_fallbacks.increment()
    log.warning(
        "%s: %s; running on %s instead (set accelerator_strict = true to refuse)",
        path.name,
        info.fallback,
        info.active,
    )


Array = npt.NDArray[np.generic]


class Backend(Protocol):
    """load (the constructor) / input and output specs / run / close."""

    name: str
    accelerator: AcceleratorInfo

    @property
    def inputs(self) -> list[TensorSpec]: ...

    @property
    def outputs(self) -> list[TensorSpec]: ...

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        """Run one inference. Returns outputs in the order of ``outputs``."""
        ...

    def close(self) -> None: ...


class BackendFactory(Protocol):
    def __call__(self, path: Path, options: BackendOptions) -> Backend: ...
