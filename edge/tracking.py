"""Trackers with one event lifecycle: start after N frames, throttled updates, end after M.

Boxes are normalized (x1, y1, x2, y2). Two ways to match a frame's boxes to tracks
(``TrackingConfig.kind``), both within a label:

- ``bytetrack`` (default): every track's box is predicted by a constant-velocity Kalman
  filter (``edge.kalman``: centre, aspect, height), as many frame intervals ahead as the
  capture times say (a dropped frame: two). Boxes scoring ``high_score`` or more
  are matched first to all tracks by IoU with the prediction (minimum-cost assignment,
  ``edge.assignment``); boxes between ``low_score`` and ``high_score`` are then matched
  to the tracks still unmatched that were seen last frame (``low_iou_threshold``). Only
  an unmatched high-score box starts a track. A track missing for up to ``max_missing``
  frames coasts on its prediction and is re-found there (ByteTrack's "track buffer");
  its event ends when that runs out. The published box is the filtered one.
- ``iou``: greedy by IoU with the track's last box, highest overlap first (the tracker
  before issue 12); every unmatched box starts a track.

Lifecycle (both): a track becomes an event (``start``) once seen in ``min_hits`` frames;
an unconfirmed track with a miss is dropped. Updates are judged on the track's score and
box smoothed over its hits (``SMOOTH``) against their values at the last sent step, and
never sent closer than ``min_update_gap_s`` after it:

- a big change is sent at once: box IoU below ``update_iou_below``, or score moved by
  ``update_score_delta``;
- a moving track is sent every ``update_interval_s``: its box centre moved more than
  ``update_still_move`` of its size (sqrt(w·h)), or its size changed by more than that;
- a still track (a parked car, with its box jitter) sends nothing between its ``start``
  and its ``end``.

It ``end``s after ``max_missing`` frames without a match, or at ``finish()``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge import kalman
from edge.assignment import assign
from edge.boxes import iou, iou_matrix
from edge.config import TrackingConfig

Box = tuple[float, float, float, float]
Phase = Literal["start", "update", "end"]
Floats = npt.NDArray[np.float64]
INTERVALS = 15
"""Frame gaps whose median is the stream's frame interval, for the Kalman prediction."""
MAX_STEPS = 10.0
"""The most frame intervals one prediction spans (a stalled stream is not extrapolated)."""
SMOOTH = 0.3
"""Weight of a new hit in ``Track.score_avg`` and ``Track.box_avg``, which the update rules
compare with their values at the last sent step. On a still face, BlazeFace's score
jitters by ±0.07 and its box centre by up to 15 % of the box size (camera shake of ±2 px
and sensor noise, tests/integration/test_tracking_still.py): raw, that would send updates
(score ± 0.1, box past update_still_move); smoothed, it stays under the thresholds and a
lasting change still shows within 2–3 frames."""


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
    emitted_box: Box = (0.0, 0.0, 0.0, 0.0)  # box_avg at the last sent step
    emitted_score: float = 0.0  # score_avg at the last sent step
    # bytetrack only: the Kalman filter of the box; None for ``iou``
    kf: kalman.BoxFilter | None = None
    # the score and box smoothed over hits (SMOOTH), which the update rules are checked on
    score_avg: float = -1.0
    box_avg: Box = (0.0, 0.0, 0.0, 0.0)


@dataclass(slots=True)
class Step:
    """One lifecycle step to publish: ``phase`` of ``track`` at capture time ``ts``."""

    phase: Phase
    track: Track
    ts: float


def _moved(a: Box, b: Box, frac: float) -> bool:
    """Whether box ``b`` left the still range of ``a`` (``update_still_move``)."""
    size_a = math.sqrt(max((a[2] - a[0]) * (a[3] - a[1]), 1e-18))
    size_b = math.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1e-18))
    shift = math.hypot((b[0] + b[2] - a[0] - a[2]) / 2, (b[1] + b[3] - a[1] - a[3]) / 2)
    return shift > frac * size_a or abs(math.log(size_b / size_a)) > math.log1p(frac)


def _box(row: Sequence[float]) -> Box:
    """A filtered Kalman box, published: clipped to the image. The filter's state may run
    past an edge (an object leaving the frame at speed, or the velocity overshooting after
    a hit at the border), but an event's box is normalized (``Event`` refuses anything
    else, which once stopped every event of a stream); the state itself stays unclipped."""
    x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in row[:4])
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


@dataclass
class Tracker:
    cfg: TrackingConfig
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1
    _last_ts: float | None = None
    _intervals: list[float] = field(default_factory=list)  # the last INTERVALS, seconds

    def update(self, observations: list[Observation], ts: float) -> list[Step]:
        """Match this frame's observations to tracks; return the lifecycle steps it causes."""
        ahead = self._frame_steps(ts)
        if self.cfg.kind == "bytetrack":
            pairs, fresh = self._match_bytetrack(observations, ahead)
        else:
            pairs, fresh = self._match_iou(observations)
        steps: list[Step] = []
        matched = {ti for ti, _ in pairs}
        for ti, oi in pairs:
            t, o = self.tracks[ti], observations[oi]
            if t.kf is None:
                t.box = o.box
            t.score, t.last_ts = o.score, ts
            t.score_avg += SMOOTH * (o.score - t.score_avg)
            a, b = t.box_avg, t.box
            t.box_avg = (
                a[0] + SMOOTH * (b[0] - a[0]),
                a[1] + SMOOTH * (b[1] - a[1]),
                a[2] + SMOOTH * (b[2] - a[2]),
                a[3] + SMOOTH * (b[3] - a[3]),
            )
            t.hits += 1
            t.missing = 0
            steps.extend(self._after_hit(t, ts))
        for ti, t in enumerate(self.tracks):
            if ti not in matched:
                t.missing += 1  # an unconfirmed track with a miss is dropped below
        for oi in fresh:
            o = observations[oi]
            t = Track(self._next_id, o.label, o.box, o.score, ts, ts, score_avg=o.score)
            t.box_avg = o.box
            if self.cfg.kind == "bytetrack":
                t.kf = kalman.BoxFilter(o.box)
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

    def _frame_steps(self, ts: float) -> float:
        """Frame intervals since the last frame: this gap over the median of the last
        ``INTERVALS`` gaps, within [1/4, MAX_STEPS]; 1 while that median is unknown or 0."""
        last, self._last_ts = self._last_ts, ts
        if last is None:
            return 1.0
        gap = ts - last
        if gap > 0:
            self._intervals = [*self._intervals[-(INTERVALS - 1) :], gap]
        typical = statistics.median(self._intervals) if self._intervals else 0.0
        if typical <= 0 or gap <= 0:
            return 1.0
        return min(max(gap / typical, 0.25), MAX_STEPS)

    # -- association ---------------------------------------------------------------------

    def _match_iou(
        self, observations: list[Observation]
    ) -> tuple[list[tuple[int, int]], list[int]]:
        pairs: list[tuple[int, int]] = []
        used_t: set[int] = set()
        used_o: set[int] = set()
        if self.tracks and observations:
            m = iou_matrix(
                np.array([t.box for t in self.tracks], np.float64),
                np.array([o.box for o in observations], np.float64),
            )
            for ti, oi in zip(*np.unravel_index(np.argsort(-m, axis=None), m.shape), strict=True):
                if m[ti, oi] < self.cfg.iou_threshold:
                    break
                if ti in used_t or oi in used_o:
                    continue
                if self.tracks[ti].label != observations[oi].label:
                    continue
                used_t.add(int(ti))
                used_o.add(int(oi))
                pairs.append((int(ti), int(oi)))
        return pairs, [oi for oi in range(len(observations)) if oi not in used_o]

    def _match_bytetrack(
        self, observations: list[Observation], ahead: float
    ) -> tuple[list[tuple[int, int]], list[int]]:
        """ByteTrack's two stages, predicting ``ahead`` frame intervals."""
        cfg = self.cfg
        high = [i for i, o in enumerate(observations) if o.score >= cfg.high_score]
        low = [i for i, o in enumerate(observations) if cfg.low_score <= o.score < cfg.high_score]
        if not self.tracks:
            return [], high
        lost = [t.missing > 0 for t in self.tracks]
        predicted: list[Box] = []
        for t, gone in zip(self.tracks, lost, strict=True):
            assert t.kf is not None  # every bytetrack track has its filter
            t.kf.predict(ahead, hold_height=gone)  # a lost track's height stops changing
            predicted.append(t.kf.box())
        pairs = self._stage(
            predicted, observations, list(range(len(self.tracks))), high, cfg.iou_threshold
        )
        rest = [ti for ti in range(len(self.tracks)) if ti not in {p[0] for p in pairs}]
        pairs += self._stage(
            predicted, observations, [ti for ti in rest if not lost[ti]], low, cfg.low_iou_threshold
        )
        for ti, oi in pairs:
            kf = self.tracks[ti].kf
            assert kf is not None
            kf.update(observations[oi].box)
            self.tracks[ti].box = _box(kf.box())
        used = {oi for _, oi in pairs}
        return pairs, [oi for oi in high if oi not in used]

    def _stage(
        self,
        predicted: list[Box],
        observations: list[Observation],
        tis: list[int],
        ois: list[int],
        min_iou: float,
    ) -> list[tuple[int, int]]:
        """Assign observations ``ois`` to tracks ``tis`` by IoU with the prediction."""
        if not tis or not ois:
            return []
        if len(tis) == 1 and len(ois) == 1:  # one track, one box: the same IoU in plain floats
            (ti,), (oi,) = tis, ois
            o = observations[oi]
            same = self.tracks[ti].label == o.label
            overlap = iou(predicted[ti], o.box) if same else 0.0
            return [(ti, oi)] if 1.0 - overlap <= 1.0 - min_iou else []
        m: Floats = iou_matrix(
            np.array([predicted[ti] for ti in tis], np.float64),
            np.array([observations[oi].box for oi in ois], np.float64),
        ).astype(np.float64)
        labels_t = [self.tracks[ti].label for ti in tis]
        labels_o = [observations[oi].label for oi in ois]
        if len({*labels_t, *labels_o}) > 1:  # one label (a face detector): nothing to mask
            lt, lo = np.array(labels_t), np.array(labels_o)
            m[lt[:, None] != lo[None, :]] = 0.0
        return [(tis[r], ois[c]) for r, c in assign(1.0 - m, 1.0 - min_iou)]

    # -- lifecycle -----------------------------------------------------------------------

    def _after_hit(self, t: Track, ts: float) -> list[Step]:
        cfg = self.cfg
        if not t.started:
            if t.hits < cfg.min_hits:
                return []
            t.started, t.started_at = True, t.first_ts
            self._mark(t, ts)
            return [Step("start", t, ts)]
        since = ts - t.emitted_ts
        if since < cfg.min_update_gap_s:
            return []
        overlap = iou(t.box_avg, t.emitted_box)
        changed = (
            abs(t.score_avg - t.emitted_score) >= cfg.update_score_delta
            or overlap < cfg.update_iou_below
        )
        if changed or (
            since >= cfg.update_interval_s
            and _moved(t.emitted_box, t.box_avg, cfg.update_still_move)
        ):
            self._mark(t, ts)
            return [Step("update", t, ts)]
        return []

    @staticmethod
    def _mark(t: Track, ts: float) -> None:
        t.emitted_ts, t.emitted_box, t.emitted_score = ts, t.box_avg, t.score_avg

    def finish(self) -> list[Step]:
        """End every started track (shutdown, source ended)."""
        steps = [Step("end", t, t.last_ts) for t in self.tracks if t.started]
        self.tracks = []
        return steps
