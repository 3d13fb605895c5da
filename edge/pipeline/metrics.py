"""Per-stream counters, rates and stage timings (``edge.pipeline.prom`` exposes them)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from edge.stats import StreamKind, StreamStats


class RateMeter:
    """Events per second over the last ``window_s`` seconds (0 once nothing arrives)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window = window_s
        self._times: deque[float] = deque(maxlen=4096)
        self._lock = threading.Lock()

    def mark(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= self._window]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-6)
        return len(recent) / span


# Upper bounds (seconds) of the stage-time histogram: 0.5 ms (a resize) to 2.5 s (a model
# on a slow board); past the last, only +Inf. Fixed, so that every device's series add up.
STAGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Timing:
    """Sum, count, an exponential moving average and a histogram of one stage's times.

    ``buckets[i]`` counts the calls that took at most ``STAGE_BUCKETS_S[i]`` seconds and
    more than the bound before it (the last, past every bound); the exposition makes them
    cumulative. One bisect per call: cheap enough for every frame."""

    sum_ms: float = 0.0
    count: int = 0
    ema_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(STAGE_BUCKETS_S) + 1))

    def add(self, ms: float) -> None:
        self.sum_ms += ms
        self.count += 1
        self.ema_ms = ms if self.count == 1 else 0.9 * self.ema_ms + 0.1 * ms
        self.buckets[bisect.bisect_left(STAGE_BUCKETS_S, ms / 1000.0)] += 1


@dataclass
class StreamMetrics:
    stream: str
    frames_in: int = 0
    processed: int = 0
    dropped: int = 0
    gated: int = 0
    skipped: int = 0  # frames of unusable shape or type
    converted: int = 0  # frames converted to BGR (grey, BGRA) or of a changed size
    reconnects: int = 0
    events: dict[str, int] = field(default_factory=lambda: {"start": 0, "update": 0, "end": 0})
    zones: dict[str, dict[str, int]] = field(default_factory=dict)  # zone → label → objects now
    lines: dict[str, dict[str, int]] = field(default_factory=dict)  # line → in / out → crossings
    stages: dict[str, Timing] = field(default_factory=dict)  # "read", "<detector>.invoke", ...
    queue_depth: dict[str, int] = field(default_factory=dict)
    last_frame: float = 0.0  # monotonic time of the last frame in
    ended: bool = False
    error: str | None = None
    rate_in: RateMeter = field(default_factory=RateMeter)
    rate_processed: RateMeter = field(default_factory=RateMeter)

    def stage(self, name: str, ms: float) -> None:
        t = self.stages.get(name)
        if t is None:
            t = self.stages[name] = Timing()
        t.add(ms)

    def inference(self, detector: str) -> Timing | None:
        """The model call of ``detector``: ``invoke`` (image detectors), ``infer`` (audio)."""
        return self.stages.get(f"{detector}.invoke") or self.stages.get(f"{detector}.infer")

    def snapshot(self, kind: StreamKind, live: bool, restarts: int = 0) -> StreamStats:
        return StreamStats(
            kind=kind,
            live=live,
            fps_in=round(self.rate_in.rate(), 2),
            fps_processed=round(self.rate_processed.rate(), 2),
            frames_in=self.frames_in,
            processed=self.processed,
            dropped=self.dropped,
            gated=self.gated,
            skipped=self.skipped,
            converted=self.converted,
            reconnects=self.reconnects,
            restarts=restarts,
            queue_depth=dict(self.queue_depth),
            events=dict(self.events),
            zones={k: dict(v) for k, v in list(self.zones.items())},
            lines={k: dict(v) for k, v in list(self.lines.items())},
            stage_ms={k: round(v.ema_ms, 3) for k, v in list(self.stages.items())},
            ended=self.ended,
            error=self.error,
        )
