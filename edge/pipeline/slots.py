"""A loaded detector per stream, behind a lock so the model can be swapped while running."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge.config import DetectorConfig
from edge.detectors import AudioDetector, ImageDetector, load_detector, set_threshold
from edge.events import ModelRef
from edge.models.resolve import ResolvedModel

log = logging.getLogger(__name__)


@dataclass
class DetectorSlot:
    name: str
    model: ResolvedModel
    detector: ImageDetector | AudioDetector
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ref(self) -> ModelRef:
        m = self.model.manifest
        return ModelRef(m.name, m.version, m.sha256)

    @property
    def is_audio(self) -> bool:
        return self.model.manifest.input.kind == "audio"

    def swap(self, model: ResolvedModel, detector: ImageDetector | AudioDetector) -> None:
        """Replace the running model between two frames; the old one is closed."""
        if (model.manifest.input.kind == "audio") != self.is_audio:
            raise ValueError(
                f"{self.name}: a {model.manifest.input.kind} model cannot replace this one"
            )
        threshold = self.detector.score_threshold
        with self.lock:
            old, self.detector, self.model = self.detector, detector, model
        try:
            set_threshold(detector, threshold)
        except Exception as exc:  # a detector without a threshold keeps its own
            log.debug("%s: threshold not carried over: %s", self.name, exc)
        old.close()

    def close(self) -> None:
        with self.lock:
            self.detector.close()


def load_slot(
    name: str, cfg: DetectorConfig, threshold: float | None, home: Path | None
) -> DetectorSlot:
    model, det = load_detector(cfg.model, threads=cfg.threads, backend=cfg.backend, home=home)
    value = threshold if threshold is not None else cfg.threshold
    if value is not None:
        set_threshold(det, value)
    return DetectorSlot(name, model, det)
