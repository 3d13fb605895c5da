"""Detector results and the detector interfaces the pipeline and CLI use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.models.manifest import Manifest
from edge.runtime.base import AcceleratorInfo, Backend

Image = npt.NDArray[np.uint8]
"""A BGR uint8 image, H×W×3, as OpenCV reads it."""

Audio = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1] at the model's sample rate."""


@dataclass(slots=True)
class Detection:
    """One object in one image. Coordinates are input-image pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    keypoints: list[tuple[float, float]] | None = None
    polygon: list[tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.box
        if not (x2 >= x1 and y2 >= y1):
            raise ValueError(
                f"box must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1, got {self.box}"
            )

    def to_json(self, ndigits: int = 2) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "score": round(float(self.score), 4),
            "box": [round(float(v), ndigits) for v in self.box],
        }
        if self.keypoints is not None:
            out["keypoints"] = [
                [round(float(x), ndigits), round(float(y), ndigits)] for x, y in self.keypoints
            ]
        if self.polygon is not None:
            out["polygon"] = [
                [round(float(x), ndigits), round(float(y), ndigits)] for x, y in self.polygon
            ]
        return out


@dataclass(slots=True)
class Segment:
    """A span of audio in seconds from the start of the stream."""

    label: str
    start: float
    end: float
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "score": round(float(self.score), 4),
        }


@dataclass(slots=True)
class StageTimes:
    """Wall time of the last call per stage, in milliseconds."""

    ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = (time.perf_counter() - t0) * 1000.0


class ImageDetector(Protocol):
    manifest: Manifest
    times: StageTimes
    score_threshold: float

    def detect(self, image: Image) -> list[Detection]:
        """Detections in one BGR image, in image pixels, above the score threshold."""
        ...

    @property
    def accelerator(self) -> AcceleratorInfo:
        """The provider or delegate the model really runs on (see ``edge.runtime``)."""
        ...

    def close(self) -> None: ...


class AudioDetector(Protocol):
    manifest: Manifest
    times: StageTimes
    score_threshold: float

    def reset(self) -> None:
        """Forget all stream state (recurrent state, open segment, position)."""
        ...

    def feed(self, samples: Audio) -> list[Segment]:
        """Push samples at the model rate; return the segments that closed."""
        ...

    def flush(self) -> list[Segment]:
        """End of stream: close any open segment and return it."""
        ...

    @property
    def active(self) -> Segment | None:
        """The segment in progress, if any (its ``end`` is the current position)."""
        ...

    @property
    def accelerator(self) -> AcceleratorInfo:
        """The provider or delegate the model really runs on (see ``edge.runtime``)."""
        ...

    def close(self) -> None: ...


class BackendDetector:
    """What every detector does the same with its model: say where it runs, close it."""

    _backend: Backend

    @property
    def accelerator(self) -> AcceleratorInfo:
        """The provider or delegate the model really runs on."""
        return self._backend.accelerator

    def close(self) -> None:
        self._backend.close()
