"""Frame hygiene and the motion gate: cheap checks before any inference."""

from __future__ import annotations

import logging
import time

import numpy as np

from edge.config import MotionGateConfig
from edge.sources.base import Image

log = logging.getLogger(__name__)

_CONVERT = {1: "COLOR_GRAY2BGR", 4: "COLOR_BGRA2BGR"}  # cv2 constants, by name


class FrameChecker:
    """Turns grey and BGRA frames into BGR, notes size changes, rejects what cannot be used."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.size: tuple[int, int] | None = None
        self.converted = 0
        self.skipped = 0

    def check(self, image: object, index: int) -> Image | None:
        if not isinstance(image, np.ndarray) or image.size == 0:
            self._skip(index, f"not an image ({type(image).__name__})")
            return None
        if image.dtype != np.uint8:
            self._skip(index, f"pixel type {image.dtype}, expected uint8")
            return None
        channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else -1
        out: Image = image
        if channels != 3:
            name = _CONVERT.get(channels)
            if name is None:
                self._skip(index, f"shape {image.shape}, expected H×W×3 (or grey, BGRA)")
                return None
            import cv2  # here, not at import: an audio-only daemon never loads OpenCV

            out = np.asarray(cv2.cvtColor(image, getattr(cv2, name)), dtype=np.uint8)
            self.converted += 1
            if self.converted == 1 or self.converted % 100 == 0:
                log.warning(
                    "%s: frame %d has %d channel(s); converted to BGR (%d so far)",
                    self.stream, index, channels, self.converted,
                )  # fmt: skip
        size = (int(out.shape[1]), int(out.shape[0]))
        if self.size is not None and size != self.size:
            log.warning("%s: frame %d is %dx%d, was %dx%d", self.stream, index, *size, *self.size)
            if channels == 3:
                self.converted += 1
        self.size = size
        return out

    def _skip(self, index: int, why: str) -> None:
        self.skipped += 1
        log.warning("%s: frame %d skipped: %s (%d so far)", self.stream, index, why, self.skipped)
        return None


class MotionGate:
    """Runs inference only when a 64×48 grey thumbnail differs enough from the last one run."""

    SIZE = (64, 48)

    def __init__(self, cfg: MotionGateConfig) -> None:
        self.cfg = cfg
        self._ref: np.ndarray | None = None
        self._last_run = -float("inf")
        self.last_diff = 0.0

    def should_run(self, image: Image, now: float | None = None) -> bool:
        import cv2

        now = time.monotonic() if now is None else now
        small = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), self.SIZE, interpolation=cv2.INTER_AREA
        )
        if self._ref is not None:
            self.last_diff = float(cv2.absdiff(small, self._ref).mean())
        run = (
            self._ref is None
            or self.last_diff >= self.cfg.threshold
            or now - self._last_run >= self.cfg.max_skip_s
        )
        if run:
            self._ref = small
            self._last_run = now
        return run
