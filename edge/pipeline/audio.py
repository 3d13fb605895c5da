"""Audio streams: chunks fed to the audio detectors (VAD, keyword spotting), segments → events."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from edge.config import StreamConfig, TrackingConfig
from edge.detectors.base import AudioDetector, Segment
from edge.errors import InputError
from edge.pipeline.audio_events import AudioEvents
from edge.pipeline.items import EndOfStream, EventBatch, Inferred, Pipeline
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot
from edge.sources import Frame

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AudioResult(Inferred):
    # per detector slot: the segments this chunk closed, and the one still open
    segments: dict[str, tuple[list[Segment], Segment | None]]


def _audio(slot: DetectorSlot) -> AudioDetector:
    det: AudioDetector = slot.detector  # type: ignore[assignment]  # audio slots hold these
    return det


class AudioPipeline(Pipeline):
    def __init__(
        self,
        cfg: StreamConfig,
        slots: list[DetectorSlot],
        tracking: TrackingConfig,
        metrics: StreamMetrics,
    ) -> None:
        super().__init__(cfg, slots, metrics)
        for s in slots:
            rate = getattr(s.detector.manifest.input, "sample_rate", cfg.sample_rate)
            if rate != cfg.sample_rate:
                raise InputError(
                    f"streams.{cfg.name}: detector {s.name} needs {rate} Hz audio; "
                    f"set sample_rate = {rate}"
                )
            _audio(s).reset()
        self._events = {
            s.name: AudioEvents(cfg.name, s.ref, tracking.audio_min_s, cfg.sample_rate)
            for s in slots
        }

    # -- infer thread --------------------------------------------------------------------

    def infer(self, frame: Frame) -> AudioResult | None:
        m = self.metrics
        chunk = frame.audio
        if chunk is None or chunk.ndim != 1 or chunk.dtype != np.float32:
            m.skipped += 1
            shape = None if chunk is None else chunk.shape
            log.warning("%s: audio chunk %d of shape %s skipped", self.cfg.name, frame.index, shape)
            return None
        results: dict[str, tuple[list[Segment], Segment | None]] = {}
        for s in self.slots:
            det = _audio(s)
            t0 = time.perf_counter()
            with s.lock:
                closed = det.feed(chunk)
                active = det.active
            m.stage(f"{s.name}.infer", (time.perf_counter() - t0) * 1000)
            results[s.name] = (closed, active)
        m.processed += 1
        m.rate_processed.mark()
        return AudioResult(frame, results)

    def flush(self) -> EndOfStream:
        end = EndOfStream()
        for s in self.slots:
            with s.lock:
                try:
                    end.flushed[s.name] = _audio(s).flush()
                except Exception:  # flushing must not block the end events
                    log.exception("%s: %s flush failed", self.cfg.name, s.name)
        return end

    # -- post thread ---------------------------------------------------------------------

    def post(self, item: Inferred, latency_ms: float, out: EventBatch) -> None:
        assert isinstance(item, AudioResult)
        for name, (closed, active) in item.segments.items():
            for ev in self._events[name].step(item.frame, closed, active, latency_ms):
                out.add(ev)

    def finish(self, end: EndOfStream, out: EventBatch) -> None:
        for name, builder in self._events.items():
            for ev in builder.finish(end.flushed.get(name, [])):
                out.add(ev)
