"""A loaded detector per stream, behind a lock so the model can be swapped while running."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge.config import DetectorConfig
from edge.detectors import (
    AudioDetector,
    ImageDetector,
    load_detector,
    set_threshold,
    with_label_thresholds,
)
from edge.events import ModelRef
from edge.models.resolve import ResolvedModel, resolve
from edge.pipeline.filters import DetectionFilter, build_filter, check_names
from edge.profiles import Profile
from edge.runtime import FORMAT_BACKEND
from edge.runtime.base import AcceleratorInfo

log = logging.getLogger(__name__)


@dataclass
class DetectorSlot:
    name: str
    model: ResolvedModel
    detector: ImageDetector | AudioDetector
    lock: threading.Lock = field(default_factory=threading.Lock)
    filter: DetectionFilter = field(default_factory=DetectionFilter)  # before tracking

    @property
    def ref(self) -> ModelRef:
        m = self.model.manifest
        return ModelRef(m.name, m.version, m.sha256)

    @property
    def accelerator(self) -> AcceleratorInfo:
        """The provider or delegate the running model really uses, and why not the one
        asked for (``fallback``); for /healthz and telemetry."""
        return self.detector.accelerator

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


def backend_options(
    cfg: DetectorConfig, model: ResolvedModel, profile: Profile | None
) -> tuple[str, int, tuple[str, ...]]:
    """Backend, threads and providers: the detector's own settings, else the device
    profile's (only where the profile uses the same runtime), else one thread."""
    backend = cfg.backend or FORMAT_BACKEND[model.manifest.format]
    rt = profile.runtime if profile is not None and profile.runtime.name == backend else None
    threads = cfg.threads or (rt.threads if rt is not None else 1)
    providers = cfg.providers if cfg.providers is not None else (rt.providers if rt else [])
    return backend, threads, tuple(providers)


def open_detector(
    cfg: DetectorConfig, model: ResolvedModel, profile: Profile | None, name: str = "NAME"
) -> ImageDetector | AudioDetector:
    """The detector of ``[detectors.NAME]``, with its ``label_thresholds`` over the manifest's."""
    key = f"detectors.{name}.label_thresholds"
    check_names(key, list(cfg.label_thresholds), model.manifest)  # before the model loads
    backend, threads, providers = backend_options(cfg, model, profile)
    det = load_detector(
        model,
        threads=threads,
        backend=backend,
        providers=providers,
        strict=cfg.accelerator_strict,
    )[1]
    try:
        return with_label_thresholds(det, cfg.label_thresholds, key)
    except BaseException:
        det.close()
        raise


def load_slot(
    name: str,
    cfg: DetectorConfig,
    threshold: float | None,
    home: Path | None,
    profile: Profile | None = None,
) -> DetectorSlot:
    model = resolve(cfg.model, home)
    filt = build_filter(name, cfg, model.manifest)  # a wrong label fails before loading
    det = open_detector(cfg, model, profile, name)
    value = threshold if threshold is not None else cfg.threshold
    if value is not None:
        set_threshold(det, value)
    return DetectorSlot(name, model, det, filter=filt)
