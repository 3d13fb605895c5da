"""Speech (or keyword) segments → events: start when a segment opens, end when it closes."""

from __future__ import annotations

from dataclasses import dataclass

from edge.detectors.base import Segment
from edge.events import Event, ModelRef, Phase
from edge.sources.base import Frame

# an open event whose segment vanished (dropped by the detector) ends after this much audio
_ORPHAN_S = 2.0


@dataclass(slots=True)
class _Open:
    track_id: int
    started_at: float
    start_s: float
    last_end_s: float
    score: float


class AudioEvents:
    """Per stream and detector. Stream time ``s`` maps to capture time ``t0 + s``."""

    def __init__(self, stream: str, model: ModelRef, min_s: float, rate: int) -> None:
        self.stream = stream
        self.rate = rate
        self.label = "speech"
        self.model = model
        self.min_s = min_s
        self._open: _Open | None = None
        self._next_id = 1
        self._t0 = 0.0
        self._pos_s = 0.0

    def _event(self, phase: Phase, o: _Open, at_s: float, score: float, latency_ms: float) -> Event:
        return Event(
            stream=self.stream,
            kind="audio",
            label=self.label,
            score=score,
            phase=phase,
            started_at=o.started_at,
            ts=self._t0 + at_s,
            model=self.model,
            track_id=o.track_id,
            latency_ms=latency_ms,
        )

    def _new(self, seg: Segment) -> _Open:
        o = _Open(self._next_id, self._t0 + seg.start, seg.start, seg.end, seg.score)
        self._next_id += 1
        return o

    def step(
        self, frame: Frame, closed: list[Segment], active: Segment | None, latency_ms: float
    ) -> list[Event]:
        """Events caused by one fed chunk: segments that closed, and the one in progress."""
        self._t0 = frame.ts - frame.offset_s
        if frame.audio is not None:
            self._pos_s = frame.offset_s + frame.audio.size / self.rate
        out: list[Event] = []
        for seg in closed:
            self.label = seg.label
            o = self._open
            if o is None:
                o = self._new(seg)
                out.append(self._event("start", o, seg.start, seg.score, latency_ms))
            out.append(self._event("end", o, seg.end, seg.score, latency_ms))
            self._open = None
        if active is not None:
            self.label = active.label
            if self._open is None and active.end - active.start >= self.min_s:
                self._open = self._new(active)
                out.append(self._event("start", self._open, active.start, active.score, latency_ms))
            elif self._open is not None:
                self._open.last_end_s = active.end
                self._open.score = active.score
        elif self._open is not None and self._pos_s - self._open.last_end_s > _ORPHAN_S:
            out.append(self.finish_one(latency_ms))
        return out

    def finish_one(self, latency_ms: float = 0.0) -> Event:
        o = self._open
        assert o is not None
        self._open = None
        return self._event("end", o, o.last_end_s, o.score, latency_ms)

    def finish(self, flushed: list[Segment]) -> list[Event]:
        """End of stream: segments the detector's flush closed, then anything still open."""
        out: list[Event] = []
        for seg in flushed:
            o = self._open or self._new(seg)
            if self._open is None:
                out.append(self._event("start", o, seg.start, seg.score, 0.0))
            out.append(self._event("end", o, seg.end, seg.score, 0.0))
            self._open = None
        if self._open is not None:
            out.append(self.finish_one())
        return out
