"""Video streams: frame checks, the motion gate, the detectors, zones, tracking, events.

Box convention: ``Detection.box`` is in pixels of the image the detector was given;
an ``Observation``/``Track``/``Event`` box is normalized ``x1, y1, x2, y2`` in [0, 1],
the wire's convention. ``normalize_box`` is the one place pixels become normalized;
zones (given normalized in the config) are tested on normalized box centres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import StreamConfig, TrackingConfig
from edge.detectors.base import Detection, ImageDetector
from edge.events import Event
from edge.pipeline.frames import FrameChecker, MotionGate
from edge.pipeline.items import EndOfStream, EventBatch, Inferred, Pipeline
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot
from edge.sources import Frame
from edge.sources.base import Image
from edge.tracking import Box, Observation, Step, Tracker

log = logging.getLogger(__name__)


def normalize_box(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    """Pixels of a ``width`` × ``height`` image → normalized, clipped to the image."""
    x1, y1, x2, y2 = box
    return (
        min(max(x1 / width, 0.0), 1.0),
        min(max(y1 / height, 0.0), 1.0),
        min(max(x2 / width, 0.0), 1.0),
        min(max(y2 / height, 0.0), 1.0),
    )


@dataclass(slots=True)
class VisionResult(Inferred):
    size: tuple[int, int]  # width, height of the image the detectors saw
    detections: dict[str, list[Detection]]  # per detector slot, boxes in pixels


class VisionPipeline(Pipeline):
    def __init__(
        self,
        cfg: StreamConfig,
        slots: list[DetectorSlot],
        tracking: TrackingConfig,
        metrics: StreamMetrics,
    ) -> None:
        super().__init__(cfg, slots, metrics)
        self._checker = FrameChecker(cfg.name)
        self._gate = (
            MotionGate(cfg.motion_gate) if cfg.motion_gate and cfg.motion_gate.enabled else None
        )
        self._zones = [np.asarray(z, np.float32).reshape(-1, 1, 2) for z in cfg.zones]
        self._trackers = {s.name: Tracker(tracking) for s in slots}
        self._last: dict[str, list[Detection]] = {}
        self.last_image: Image | None = None

    # -- infer thread --------------------------------------------------------------------

    def infer(self, frame: Frame) -> VisionResult | None:
        m = self.metrics
        image = self._checker.check(frame.image, frame.index)
        m.converted = self._checker.converted
        if image is None:
            m.skipped += 1
            return None
        self.last_image = image
        if self._gate is not None and not self._gate.should_run(image):
            m.gated += 1
            results = self._last  # the gate keeps the last detections (and tracks) alive
        else:
            results = {}
            h, w = image.shape[:2]
            for s in self.slots:
                det: ImageDetector = s.detector  # type: ignore[assignment]  # image slot
                try:
                    with s.lock:
                        found = det.detect(image)
                        times = dict(det.times.ms)
                    results[s.name] = s.filter.apply(found, w, h)  # labels, areas (filters.py)
                except Exception as exc:  # one bad frame must not stop the stream
                    m.skipped += 1
                    log.warning(
                        "%s: %s failed on frame %d: %s", self.cfg.name, s.name, frame.index, exc
                    )
                    continue
                for k, v in times.items():
                    m.stage(f"{s.name}.{k}", v)
            self._last = results
            m.processed += 1
            m.rate_processed.mark()
        return VisionResult(frame, (image.shape[1], image.shape[0]), results)

    def flush(self) -> EndOfStream:
        return EndOfStream()

    # -- post thread ---------------------------------------------------------------------

    def post(self, item: Inferred, latency_ms: float, out: EventBatch) -> None:
        assert isinstance(item, VisionResult)
        for name, dets in item.detections.items():
            steps = self._trackers[name].update(self._observations(dets, item.size), item.frame.ts)
            if steps:  # the common case, every frame: nothing to do
                self._events(name, steps, latency_ms, out)

    def finish(self, end: EndOfStream, out: EventBatch) -> None:
        for name, tracker in self._trackers.items():
            self._events(name, tracker.finish(), 0.0, out)

    def _observations(self, dets: list[Detection], size: tuple[int, int]) -> list[Observation]:
        out = []
        for d in dets:
            box = normalize_box(d.box, *size)
            if self._zones and not self._in_zones((box[0] + box[2]) / 2, (box[1] + box[3]) / 2):
                continue
            out.append(Observation(d.label, d.score, box))
        return out

    def _in_zones(self, x: float, y: float) -> bool:
        return any(cv2.pointPolygonTest(z, (x, y), False) >= 0 for z in self._zones)

    def _events(self, name: str, steps: list[Step], latency_ms: float, out: EventBatch) -> None:
        ref = next(s.ref for s in self.slots if s.name == name)
        for st in steps:
            t = st.track
            out.add(
                Event(
                    stream=self.cfg.name,
                    kind="vision",
                    label=t.label,
                    score=t.score,
                    phase=st.phase,
                    started_at=t.started_at,
                    ts=st.ts,
                    model=ref,
                    track_id=t.id,
                    box=t.box,
                    latency_ms=latency_ms,
                )
            )
