"""Each stream's figures as Prometheus metric families (``prometheus_client``).

Imported on the first scrape of ``/metrics``, not at start-up: ``prometheus_client``
costs ~50 ms of imports that a daemon which is never scraped should not pay.
Base units (seconds), ``_total`` counters, and a histogram of every stage's time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from edge.pipeline.metrics import STAGE_BUCKETS_S, StreamMetrics, Timing

_COUNTERS = (  # metric (without _total), StreamMetrics attribute, help
    ("frames_in", "frames_in", "Frames captured"),
    ("frames_processed", "processed", "Frames through the detectors"),
    ("frames_dropped", "dropped", "Frames dropped (latest-frame policy, fps limit)"),
    ("frames_gated", "gated", "Frames skipped by the motion gate"),
    ("frames_skipped", "skipped", "Frames of unusable shape or type"),
    ("frames_converted", "converted", "Frames converted (channels) or of a changed size"),
    ("reconnects", "reconnects", "Source reconnects"),
)

_LE = (*(repr(b) for b in STAGE_BUCKETS_S), "+Inf")  # the "le" label of each bucket


def histogram_buckets(t: Timing) -> list[tuple[str, float]]:
    """``t``'s buckets made cumulative, as ``HistogramMetricFamily`` wants them. The list
    is copied first: the stream's thread may add a sample while this runs."""
    out: list[tuple[str, float]] = []
    total = 0
    for le, n in zip(_LE, list(t.buckets), strict=True):
        total += n
        out.append((le, float(total)))
    return out


def stream_families(streams: Sequence[StreamMetrics], up: dict[str, bool]) -> Iterator[Metric]:
    """Every stream's counters, gauges and stage-time histograms."""
    fps_in = GaugeMetricFamily(
        "edgewise_fps_in", "Frames in per second (last 5 s)", labels=["stream"]
    )
    fps_out = GaugeMetricFamily(
        "edgewise_fps_processed", "Frames processed per second (last 5 s)", labels=["stream"]
    )
    for m in streams:
        fps_in.add_metric([m.stream], m.rate_in.rate())
        fps_out.add_metric([m.stream], m.rate_processed.rate())
    yield fps_in
    yield fps_out
    for metric, attr, help_ in _COUNTERS:
        c = CounterMetricFamily(f"edgewise_{metric}", help_, labels=["stream"])
        for m in streams:
            c.add_metric([m.stream], float(getattr(m, attr)))
        yield c
    events = CounterMetricFamily(
        "edgewise_events", "Events made by a stream, by phase", labels=["stream", "phase"]
    )
    queues = GaugeMetricFamily(
        "edgewise_queue_depth", "Items waiting in a stream queue", labels=["stream", "queue"]
    )
    zones = GaugeMetricFamily(
        "edgewise_zone_objects",
        "Tracked objects in a named zone now",
        labels=["stream", "zone", "label"],
    )
    lines = CounterMetricFamily(
        "edgewise_line_crossings",
        "Crossings of a named line",
        labels=["stream", "line", "direction"],
    )
    avg = GaugeMetricFamily(
        "edgewise_stage_average_seconds",
        "Stage time, exponential moving average (seconds); detector stages are DETECTOR.STEP",
        labels=["stream", "stage"],
    )
    hist = HistogramMetricFamily(
        "edgewise_stage_seconds",
        "Stage time (seconds); detector stages are DETECTOR.STEP (DETECTOR.invoke: inference)",
        labels=["stream", "stage"],
    )
    for m in streams:
        for phase, n in list(m.events.items()):
            events.add_metric([m.stream, phase], float(n))
        for q, n in list(m.queue_depth.items()):
            queues.add_metric([m.stream, q], float(n))
        for z, by_label in list(m.zones.items()):
            for label, n in list(by_label.items()):
                zones.add_metric([m.stream, z, label], float(n))
        for ln, by_dir in list(m.lines.items()):
            for d, n in list(by_dir.items()):
                lines.add_metric([m.stream, ln, d], float(n))
        for stage, t in list(m.stages.items()):
            avg.add_metric([m.stream, stage], t.ema_ms / 1000.0)
            hist.add_metric([m.stream, stage], histogram_buckets(t), t.sum_ms / 1000.0)
    yield from (events, queues, zones, lines, avg, hist)
    stream_up = GaugeMetricFamily(
        "edgewise_stream_up", "1 while the stream produces frames", labels=["stream"]
    )
    for name, ok in up.items():
        stream_up.add_metric([name], float(ok))
    yield stream_up
