"""The daemon's ``/metrics``: one ``prometheus_client`` collector over the figures the
daemon already keeps (stream metrics, sink and snapshot stats, component health), in
a registry of its own (never the process-wide default: two daemons in one test process
must not share series).

Imported on the first scrape (see ``Reporting.metrics_text``): ``prometheus_client``
costs ~50 ms of imports that start-up should not pay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edge.pipeline.prom import stream_families
from edge.runtime import accelerator_fallbacks
from edge.sinks import SinkStats
from edge.stats import SnapshotStats
from edge.supervise import ComponentHealth

if TYPE_CHECKING:
    from edge.daemon.report import Reporting


class DaemonCollector(Collector):
    """Reads the daemon's stats objects at each scrape; nothing is counted twice."""

    def __init__(self, daemon: Reporting) -> None:
        self._d = daemon

    def collect(self) -> Iterator[Metric]:
        d = self._d
        running = d._running
        runners = running.runners if running is not None else []
        yield from stream_families([r.metrics for r in runners],
                                   {r.cfg.name: r.healthy() for r in runners})  # fmt: skip
        yield from daemon_families(d)
        yield from supervisor_families(tuple(d.components()), d._sink_stats)
        yield from snapshot_families(d._snapshot_stats())


def _counter(name: str, help_: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_, value=value)


def daemon_families(d: Reporting) -> Iterator[Metric]:
    """The daemon's own counters (across reloads) and its uptime."""
    yield _counter("edgewise_events_emitted", "Events handed to the sinks", d.events_total)
    yield _counter("edgewise_config_reloads", "Config reloads that took effect", d.reloads)
    yield _counter(
        "edgewise_config_reload_failures",
        "Config reloads refused or rolled back (the old config kept running)",
        d.reload_failures,
    )
    yield _counter(
        "edgewise_accelerator_fallbacks",
        "Requested accelerators (delegates, execution providers) that fell back to the CPU",
        accelerator_fallbacks.value,
    )
    yield GaugeMetricFamily(
        "edgewise_uptime_seconds", "Seconds since the daemon started",
        value=time.monotonic() - d.t_start,
    )  # fmt: skip


def supervisor_families(
    comps: tuple[ComponentHealth, ...], sinks: dict[str, SinkStats]
) -> Iterator[Metric]:
    """Component up/restarts and sink failures/losses."""
    up = GaugeMetricFamily(
        "edgewise_component_up", "1 while the component is healthy", labels=["component"]
    )
    restarts = CounterMetricFamily(
        "edgewise_thread_restarts", "Restarts of a component's thread", labels=["component"]
    )
    for c in comps:
        up.add_metric([c.name], float(c.ok))
        restarts.add_metric([c.name], float(c.restarts))
    yield up
    yield restarts
    for name, help_, attr in (
        ("edgewise_sink_failures", "Calls into a sink that failed", "failures"),
        ("edgewise_events_lost", "Events a sink failed on or refused", "lost"),
        ("edgewise_snapshots_lost", "Snapshots a sink failed on", "snapshots_lost"),
    ):
        fam = CounterMetricFamily(name, help_, labels=["sink"])
        for sink, st in sorted(sinks.items()):
            fam.add_metric([sink], float(getattr(st, attr)))
        yield fam


def snapshot_families(s: SnapshotStats) -> Iterator[Metric]:
    """Event snapshots (``edge.snapshots``)."""
    yield _counter("edgewise_snapshots_taken", "Snapshot JPEGs handed to the sinks", s.taken)
    dropped = CounterMetricFamily(
        "edgewise_snapshots_dropped", "Snapshot JPEGs not taken, by reason", labels=["reason"]
    )
    for reason, n in sorted(s.dropped.items()):
        dropped.add_metric([reason], float(n))
    yield dropped
    yield GaugeMetricFamily(
        "edgewise_snapshot_encode_seconds",
        "Median time to encode one event's snapshots (frame and crop), last 256 events",
        value=s.encode_ms / 1000.0,
    )
    yield GaugeMetricFamily(
        "edgewise_snapshot_queue_depth", "Snapshot encode jobs waiting", value=s.queue_depth
    )


def new_registry(daemon: Reporting) -> CollectorRegistry:
    """A registry of the daemon's own; ``auto_describe=False`` so that registering does
    not run a collection during start-up."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    return registry


def render(registry: CollectorRegistry) -> str:
    """The text exposition (version 0.0.4) of ``registry``."""
    return generate_latest(registry).decode()
