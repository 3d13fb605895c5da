"""Per-stream counters, rates and stage timings, and their Prometheus text form."""

from __future__ import annotations

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


@dataclass
class Timing:
    """Sum, count and an exponential moving average of one stage's milliseconds."""

    sum_ms: float = 0.0
    count: int = 0
    ema_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.sum_ms += ms
        self.count += 1
        self.ema_ms = ms if self.count == 1 else 0.9 * self.ema_ms + 0.1 * ms


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


_COUNTERS = (  # metric, StreamMetrics attribute, help
    ("frames_in", "frames_in", "Frames captured"),
    ("frames_processed", "processed", "Frames through the detectors"),
    ("frames_dropped", "dropped", "Frames dropped (latest-frame policy, fps limit)"),
    ("frames_gated", "gated", "Frames skipped by the motion gate"),
    ("frames_skipped", "skipped", "Frames of unusable shape or type"),
    ("frames_converted", "converted", "Frames converted (channels) or of a changed size"),
    ("reconnects", "reconnects", "Source reconnects"),
)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(
    streams: list[StreamMetrics], up: dict[str, bool], extra: dict[str, float] | None = None
) -> str:
    """The Prometheus text exposition (version 0.0.4) of every stream's figures."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str, rows: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{lab}}} {value:.6g}" if lab else f"{name} {value:.6g}")

    def per_stream(attr: str) -> list[tuple[dict[str, str], float]]:
        return [({"stream": m.stream}, float(getattr(m, attr))) for m in streams]

    rate_in = [({"stream": m.stream}, m.rate_in.rate()) for m in streams]
    rate_out = [({"stream": m.stream}, m.rate_processed.rate()) for m in streams]
    events = [
        ({"stream": m.stream, "phase": p}, float(n)) for m in streams for p, n in m.events.items()
    ]
    queues = [
        ({"stream": m.stream, "queue": q}, float(n))
        for m in streams
        for q, n in m.queue_depth.items()
    ]
    stages = [(m.stream, s, t) for m in streams for s, t in m.stages.items()]
    in_zones = [
        ({"stream": m.stream, "zone": z, "label": label}, float(n))
        for m in streams
        for z, by_label in list(m.zones.items())
        for label, n in by_label.items()
    ]
    crossings = [
        ({"stream": m.stream, "line": ln, "direction": d}, float(n))
        for m in streams
        for ln, c in list(m.lines.items())
        for d, n in c.items()
    ]
    family("edgewise_fps_in", "gauge", "Frames in per second (last 5 s)", rate_in)
    family("edgewise_fps_processed", "gauge", "Frames processed per second (last 5 s)", rate_out)
    for metric, attr, help_ in _COUNTERS:
        family(f"edgewise_{metric}_total", "counter", help_, per_stream(attr))
    family("edgewise_events_total", "counter", "Events emitted", events)
    family("edgewise_queue_depth", "gauge", "Items waiting in a stream queue", queues)
    family("edgewise_zone_objects", "gauge", "Tracked objects in a named zone now", in_zones)
    family("edgewise_line_crossings_total", "counter", "Crossings of a named line", crossings)
    family(
        "edgewise_stage_ms",
        "gauge",
        "Stage time, moving average (ms); detector stages are DETECTOR.STEP",
        [({"stream": st, "stage": s}, t.ema_ms) for st, s, t in stages],
    )
    family(
        "edgewise_stage_ms_sum",
        "counter",
        "Stage time, total (ms)",
        [({"stream": st, "stage": s}, t.sum_ms) for st, s, t in stages],
    )
    family(
        "edgewise_stage_count",
        "counter",
        "Stage calls",
        [({"stream": st, "stage": s}, float(t.count)) for st, s, t in stages],
    )
    family(
        "edgewise_stream_up",
        "gauge",
        "1 while the stream produces frames",
        [({"stream": k}, float(v)) for k, v in up.items()],
    )
    for name, value in (extra or {}).items():
        family(name, "gauge", name.replace("_", " "), [({}, value)])
    return "\n".join(out) + "\n"
