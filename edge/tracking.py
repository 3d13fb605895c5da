"""An IoU tracker with an event lifecycle: start after N frames, throttled updates, end after M.

Boxes are normalized (x1, y1, x2, y2). Matching is greedy by IoU within a label,
highest overlap first. A track becomes an event (``start``) once it was seen in
``min_hits`` frames; it is ``update``d at most every ``update_interval_s``
unless its score or box changed enough (never closer than ``min_update_gap_s``);
it ``end``s after ``max_missing`` frames without a match, or at ``finish()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edge.boxes import iou, iou_matrix
from edge.config import TrackingConfig

Box = tuple[float, float, float, float]
Phase = Literal["start", "update", "end"]


@dataclass(slots=True)
class Observation:
    label: str
    score: float
    box: Box


@dataclass(slots=True)
class Track:
    id: int
    label: str
    box: Box
    score: float
    first_ts: float
    last_ts: float
    hits: int = 1
    missing: int = 0
    started: bool = False
    started_at: float = 0.0
    emitted_ts: float = 0.0
    emitted_box: Box = (0.0, 0.0, 0.0, 0.0)
    emitted_score: float = 0.0


@dataclass(slots=True)
class Step:
    """One lifecycle step to publish: ``phase`` of ``track`` at capture time ``ts``."""

    phase: Phase
    track: Track
    ts: float


@dataclass
class Tracker:
    cfg: TrackingConfig
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, observations: list[Observation], ts: float) -> list[Step]:
        """Match this frame's observations to tracks; return the lifecycle steps it causes."""
        steps: list[Step] = []
        matched_tracks: set[int] = set()
        matched_obs: set[int] = set()
        if self.tracks and observations:
            tb = np.array([t.box for t in self.tracks], np.float64)
            ob = np.array([o.box for o in observations], np.float64)
            m = iou_matrix(tb, ob)
            for ti, oi in zip(*np.unravel_index(np.argsort(-m, axis=None), m.shape), strict=True):
                if m[ti, oi] < self.cfg.iou_threshold:
                    break
                if ti in matched_tracks or oi in matched_obs:
                    continue
                t, o = self.tracks[ti], observations[oi]
                if t.label != o.label:
                    continue
                matched_tracks.add(int(ti))
                matched_obs.add(int(oi))
                t.box, t.score, t.last_ts = o.box, o.score, ts
                t.hits += 1
                t.missing = 0
                steps.extend(self._after_hit(t, ts))
        for ti, t in enumerate(self.tracks):
            if ti not in matched_tracks:
                t.missing += 1  # an unconfirmed track with a miss is dropped below
        for oi, o in enumerate(observations):
            if oi not in matched_obs:
                t = Track(self._next_id, o.label, o.box, o.score, ts, ts)
                self._next_id += 1
                self.tracks.append(t)
                steps.extend(self._after_hit(t, ts))
        keep: list[Track] = []
        for t in self.tracks:
            gone = t.missing >= self.cfg.max_missing or (not t.started and t.missing > 0)
            if not gone:
                keep.append(t)
            elif t.started:
                steps.append(Step("end", t, t.last_ts))
        self.tracks = keep
        return steps

    def _after_hit(self, t: Track, ts: float) -> list[Step]:
        if not t.started:
            if t.hits < self.cfg.min_hits:
                return []
            t.started, t.started_at = True, t.first_ts
            self._mark(t, ts)
            return [Step("start", t, ts)]
        since = ts - t.emitted_ts
        if since < self.cfg.min_update_gap_s:
            return []
        changed = (
            abs(t.score - t.emitted_score) >= self.cfg.update_score_delta
            or iou(t.box, t.emitted_box) < self.cfg.update_iou_below
        )
        if since >= self.cfg.update_interval_s or changed:
            self._mark(t, ts)
            return [Step("update", t, ts)]
        return []

    @staticmethod
    def _mark(t: Track, ts: float) -> None:
        t.emitted_ts, t.emitted_box, t.emitted_score = ts, t.box, t.score

    def finish(self) -> list[Step]:
        """End every started track (shutdown, source ended)."""
        steps = [Step("end", t, t.last_ts) for t in self.tracks if t.started]
        self.tracks = []
        return steps
