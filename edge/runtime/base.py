"""The one small interface every inference backend implements.

Tensors in, tensors out: a backend knows nothing of images, boxes or audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt


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
    """How to run a model: threads and the provider / delegate names to try, in order."""

    threads: int = 1
    providers: tuple[str, ...] = field(default_factory=tuple)


Array = npt.NDArray[np.generic]


class Backend(Protocol):
    """load (the constructor) / input and output specs / run / close."""

    name: str

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
