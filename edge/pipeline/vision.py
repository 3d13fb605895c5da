"""Video streams: frame checks, the motion gate, the detectors, zones, tracking, events.

Box convention: ``Detection.box`` is in pixels of the image the detector was given;
an ``Observation``/``Track``/``Event`` box is normalized ``x1, y1, x2, y2`` in [0, 1],
the wire's convention. ``normalize_box`` is the one place pixels become normalized;
zones and lines (given normalized in the config) are tested on normalized boxes, at
each one's anchor point (``edge.zones``).

Snapshots (``edge.snapshots.tracks``), when the daemon passes an encoder: a track's
``start`` and ``end`` events queue JPEG jobs of the frame the detector saw; enter, exit
and cross events carry none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge.config import StreamConfig, TrackingConfig
from edge.detectors.base import Detection, ImageDetector
from edge.events import Event, Phase
from edge.pipeline.frames import FrameChecker, MotionGate
from edge.pipeline.items import EndOfStream, EventBatch, Inferred, Pipeline
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot
from edge.snapshots.encoder import SnapshotEncoder
from edge.snapshots.tracks import TrackSnapshots
from edge.sources import Frame
from edge.sources.base import Image
from edge.tracking import Box, Observation, Step, Track, Tracker
from edge.zones import (
    Direction,
    Regions,
    RegionStep,
    Seen,
    anchor_in_any,
    merge_line_counts,
    merge_zone_counts,
)

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
    image: Image | None = None  # the (BGR) image the detectors saw: snapshots keep it


def _matched(tracker: Tracker, ts: float) -> list[Track]:
    """The started tracks a detection matched in the frame of ``ts`` (zones and lines
    observe them; snapshots offer them the frame)."""
    return [t for t in tracker.tracks if t.started and t.missing == 0 and t.last_ts == ts]


class VisionPipeline(Pipeline):
    def __init__(
        self,
        cfg: StreamConfig,
        slots: list[DetectorSlot],
        tracking: TrackingConfig,
        metrics: StreamMetrics,
        snapshots: SnapshotEncoder | None = None,
    ) -> None:
        super().__init__(cfg, slots, metrics)
        self.snapshots = TrackSnapshots(cfg.name, snapshots) if snapshots is not None else None
        self._checker = FrameChecker(cfg.name)
        self._gate = (
            MotionGate(cfg.motion_gate) if cfg.motion_gate and cfg.motion_gate.enabled else None
        )
        self._filter = cfg.zones if cfg.zone_filter else []
        self._trackers = {s.name: Tracker(tracking) for s in slots}
        self._regions = {s.name: Regions(cfg.zones, cfg.lines) for s in slots}
        self._publish_counts()
        self._last: dict[str, list[Detection]] = {}
        self.last_image: Image | None = None
        self._image: Image | None = None  # post thread: the frame being posted

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
        return VisionResult(frame, (image.shape[1], image.shape[0]), results, image)

    def flush(self) -> EndOfStream:
        return EndOfStream()

    # -- post thread ---------------------------------------------------------------------

    def post(self, item: Inferred, latency_ms: float, out: EventBatch) -> None:
        assert isinstance(item, VisionResult)
        ts = item.frame.ts
        self._image = item.image
        for name, dets in item.detections.items():
            tracker = self._trackers[name]
            steps = tracker.update(self._observations(dets, item.size), ts)
            if self.snapshots is not None:
                self._seen(name, tracker, steps, ts, item.image)
            regions = self._regions[name]
            if regions.empty:
                if steps:  # the common case, every frame: nothing to do
                    self._events(name, steps, [], latency_ms, out)
                continue
            seen = [Seen(t.id, t.label, t.box) for t in _matched(tracker, ts)]
            region_steps = regions.observe(seen, ts)
            if steps or region_steps:
                self._events(name, steps, region_steps, latency_ms, out)
            if len(regions.tracks) > len(tracker.tracks):
                regions.keep_only({t.id for t in tracker.tracks})
        if any(not r.empty for r in self._regions.values()):
            self._publish_counts()
        if self.snapshots is not None:
            out.after_flush(self.snapshots.release)

    def finish(self, end: EndOfStream, out: EventBatch) -> None:
        self._image = None  # tracks end on their best frame, not a current one
        for name, tracker in self._trackers.items():
            self._events(name, tracker.finish(), [], 0.0, out)
        self._publish_counts()
        if self.snapshots is not None:
            out.after_flush(self.snapshots.release)

    def _seen(
        self, name: str, tracker: Tracker, steps: list[Step], ts: float, image: Image | None
    ) -> None:
        """Offer this frame to each started track it matched (the best frame is kept)."""
        shots = self.snapshots
        assert shots is not None
        if image is None:
            return
        for t in _matched(tracker, ts):
            shots.seen((name, t.id), t.score, t.box, ts, image)
        if len(shots.held) > len(tracker.tracks):  # a track left without an end: forget it
            ending = {st.track.id for st in steps if st.phase == "end"}  # _events takes those
            shots.keep_only(name, {t.id for t in tracker.tracks} | ending)

    def _publish_counts(self) -> None:
        """Objects in each zone now and crossings so far, summed over the detectors
        (telemetry); new dicts each time, so a snapshot on another thread sees whole ones."""
        rs = self._regions.values()
        self.metrics.zones = merge_zone_counts(r.zone_counts() for r in rs)
        lines = merge_line_counts(r.line_counts() for r in rs)
        self.metrics.lines = {k: {"in": v["in"], "out": v["out"]} for k, v in lines.items()}

    def _observations(self, dets: list[Detection], size: tuple[int, int]) -> list[Observation]:
        out = []
        for d in dets:
            box = normalize_box(d.box, *size)
            if self._filter and not anchor_in_any(box, self._filter):
                continue
            out.append(Observation(d.label, d.score, box))
        return out

    def _events(
        self,
        name: str,
        steps: list[Step],
        region_steps: list[RegionStep],
        latency_ms: float,
        out: EventBatch,
    ) -> None:
        """Lifecycle steps and region steps of one frame, in an order a reader can follow:
        ``start`` before the track's ``enter``s, its ``exit``s before its ``end``."""
        ref = next(s.ref for s in self.slots if s.name == name)
        regions = self._regions[name]
        has_zones = bool(self.cfg.zones)
        by_id = {t.id: t for t in self._trackers[name].tracks}
        ended = {st.track.id: st.track for st in steps if st.phase == "end"}

        def event(
            t: Track,
            phase: Phase,
            ts: float,
            zone: str | None = None,
            line: str | None = None,
            direction: Direction | None = None,
        ) -> Event:
            return Event(
                stream=self.cfg.name,
                kind="vision",
                label=t.label,
                score=t.score,
                phase=phase,
                started_at=t.started_at,
                ts=ts,
                model=ref,
                track_id=t.id,
                box=t.box,
                latency_ms=latency_ms,
                zones=tuple(regions.zones_of(t.id)) if has_zones else None,
                zone=zone,
                line=line,
                direction=direction,
            )

        shots = self.snapshots
        for st in steps:
            if st.phase != "end":
                e = event(st.track, st.phase, st.ts)
                if shots is not None and st.phase == "start":
                    shots.started((name, st.track.id), e, self._image)
                out.add(e)
        for rs in region_steps:
            t = by_id.get(rs.track_id) or ended.get(rs.track_id)
            if t is None:  # cannot happen: a region step is about a track of this frame
                continue
            if rs.phase == "cross":
                out.add(event(t, "cross", rs.ts, line=rs.region, direction=rs.direction))
            else:
                out.add(event(t, rs.phase, rs.ts, zone=rs.region))
        for st in steps:
            if st.phase == "end":
                t = st.track
                last = regions.zones_of(t.id) if has_zones else None
                for rs in regions.end(t.id, st.ts):
                    out.add(event(t, "exit", rs.ts, zone=rs.region))
                e = event(t, "end", st.ts)
                e.zones = tuple(last) if last is not None else None  # where it was last seen
                if shots is not None:
                    shots.ended((name, t.id), e)
                out.add(e)
