"""The hub's counters, and the ``prometheus_client`` collector that exposes them.

The counters stay plain fields that the writer and the API bump under ``lock``; the
collector reads them at each scrape into metric families, in a registry per ``Hub``
(never the process-wide default: tests build several hubs in one process).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

# Upper bounds (seconds) of the hub's latency histograms: from a local SQLite commit
# (~1 ms) to a message that waited out a database outage; past the last, only +Inf.
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
             30.0, 60.0)  # fmt: skip
_LE = (*(repr(b) for b in BUCKETS_S), "+Inf")  # the "le" label of each bucket


@dataclass
class Latency:
    """A histogram's figures: the count per bucket of ``BUCKETS_S`` (not cumulative; the
    last, past every bound) and the sum. One bisect per observation."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.sum_s += seconds

    def family(self, name: str, help_: str) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, help_)
        total, cumulative = 0, []
        for le, n in zip(_LE, self.counts, strict=True):
            total += n
            cumulative.append((le, float(total)))
        fam.add_metric([], cumulative, self.sum_s)
        return fam


@dataclass
class HubMetrics:
    received: Counter[str] = field(default_factory=Counter)  # by topic kind
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    quarantined: Counter[str] = field(default_factory=Counter)  # by reason
    quarantine_failed: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)  # stored rows skipped, by table
    hub_acks: int = 0
    hub_ack_failures: int = 0
    hub_online_sent: int = 0
    events_stored: int = 0
    events_duplicate: int = 0
    batches_written: int = 0
    write_time: Latency = field(default_factory=Latency)  # per write transaction
    ingest_time: Latency = field(default_factory=Latency)  # per message: receipt to written
    write_errors: int = 0
    sse_clients: int = 0
    sse_sent: int = 0
    mqtt_connected: bool = False
    mqtt_shared: bool = False
    snapshots_stored: int = 0
    snapshots_duplicate: int = 0
    snapshots_rejected: Counter[str] = field(default_factory=Counter)  # by reason
    snapshots_deleted: Counter[str] = field(default_factory=Counter)  # age, size, orphan
    snapshots_damaged: int = 0
    snapshots_pending: int = 0
    snapshots_waited: int = 0
    snapshots_pending_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wrote(self, seconds: float) -> None:
        """One write transaction took ``seconds``; the caller holds ``lock``."""
        self.write_time.observe(seconds)
        self.batches_written += 1

    def snapshot_counts(self) -> dict[str, object]:
        """The snapshot counters, for ``/healthz``."""
        with self.lock:
            return {
                "stored": self.snapshots_stored,
                "duplicate": self.snapshots_duplicate,
                "rejected": dict(sorted(self.snapshots_rejected.items())),
                "deleted": dict(sorted(self.snapshots_deleted.items())),
                "damaged": self.snapshots_damaged,
                "pending": self.snapshots_pending,
            }


# What the API adds at each scrape (from the store, the feed and the intake queue):
# name (without edge_hub_), type, help. ``HubCollector``'s ``extra`` returns their values.
EXTRA: dict[str, tuple[str, str]] = {
    "feed_ring_events": ("gauge", "events held in the live feed's ring for /api/stream"),
    "queue_depth": ("gauge", "MQTT messages waiting for the writer"),
    "queue_bytes": ("gauge", "bytes of the MQTT messages waiting for the writer"),
    "queue_high_water": ("gauge", "most MQTT messages ever waiting for the writer at once"),
    "queue_blocked_seconds": (
        "counter", "seconds the MQTT intake waited for room in the full writer queue",
    ),
    # not snapshots_stored: that is the counter's family (edge_hub_snapshots_stored_total)
    "snapshots_kept": ("gauge", "snapshots kept now (after retention)"),
    "snapshots_kept_bytes": ("gauge", "bytes of the snapshots kept now"),
    "devices": ("gauge", "devices the hub has heard from"),
    "devices_online": ("gauge", "devices whose last status is online"),
}  # fmt: skip


def _by(name: str, help_: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(f"edge_hub_{name}", help_, labels=[label])
    for k, v in sorted(counts.items()):
        fam.add_metric([k], float(v))
    return fam


def _one(name: str, help_: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"edge_hub_{name}", help_, value=float(value))


class HubCollector(Collector):
    """``metrics`` as metric families at each scrape, plus what ``extra`` reads (see
    ``EXTRA``; a name not there is a programming error and raises)."""

    def __init__(
        self, metrics: HubMetrics, extra: Callable[[], Mapping[str, float]] | None = None
    ) -> None:
        self._m = metrics
        self._extra = extra

    def collect(self) -> Iterator[Metric]:
        extra = dict(self._extra()) if self._extra is not None else {}
        with self._m.lock:  # a consistent set: the writer bumps these under the same lock
            families = list(self._counters(self._m))
        yield from families
        for name, v in sorted(extra.items()):
            kind, help_ = EXTRA[name]
            if kind == "counter":
                yield _one(name, help_, v)
            else:
                yield GaugeMetricFamily(f"edge_hub_{name}", help_, value=float(v))

    @staticmethod
    def _counters(m: HubMetrics) -> Iterator[Metric]:
        yield _by("messages_received", "MQTT messages received by topic kind", "kind", m.received)
        yield _by("messages_rejected", "messages refused, by reason", "reason", m.rejected)
        yield _by(
            "messages_quarantined",
            "messages or events kept in the quarantine table instead of stored, by reason",
            "reason", m.quarantined,
        )  # fmt: skip
        yield _one(
            "quarantine_failures",
            "messages that could not even be quarantined (logged)",
            m.quarantine_failed,
        )
        yield _by(
            "rows_unreadable",
            "stored rows skipped by a reader (non-finite number, time out of range), by table",
            "table", m.unreadable,
        )  # fmt: skip
        yield _one("hub_acks", "HubAckV1 messages published to devices", m.hub_acks)
        yield _one(
            "hub_online",
            "HubOnlineV1 announcements (one per (re)subscription): devices resend unacked rows",
            m.hub_online_sent,
        )
        yield _one("hub_ack_failures",
                   "HubAckV1 publishes paho refused (disconnected); devices resend",
                   m.hub_ack_failures)  # fmt: skip
        yield _one("events_stored", "events stored (new)", m.events_stored)
        yield _one("events_duplicate", "events already stored (redelivered)", m.events_duplicate)
        yield _one("db_batches", "write transactions", m.batches_written)
        yield m.write_time.family(
            "edge_hub_db_write_seconds", "time of one write transaction (seconds)"
        )
        yield m.ingest_time.family(
            "edge_hub_ingest_seconds",
            "time from an MQTT message's receipt to the end of the write that handled it "
            "(queue wait and write; seconds)",
        )
        yield _one("db_write_errors", "failed writes (retried)", m.write_errors)
        yield GaugeMetricFamily(
            "edge_hub_sse_clients", "open /api/stream connections", value=m.sse_clients
        )
        yield _one("sse_events_sent", "events sent on /api/stream", m.sse_sent)
        yield GaugeMetricFamily("edge_hub_mqtt_connected", "1 while connected to the broker",
                                value=float(m.mqtt_connected))  # fmt: skip
        yield GaugeMetricFamily("edge_hub_mqtt_shared_subscription",
                                "1 when a v5 shared subscription is used",
                                value=float(m.mqtt_shared))  # fmt: skip
        yield from _snapshot_families(m)


def _snapshot_families(m: HubMetrics) -> Iterator[Metric]:
    """The snapshot counters (issue 13); the caller holds the lock."""
    yield _one("snapshots_stored", "snapshots stored (new)", m.snapshots_stored)
    yield _one("snapshots_duplicate", "snapshots already stored (a resend; nothing written)",
               m.snapshots_duplicate)  # fmt: skip
    yield _by("snapshots_rejected", "snapshot messages refused, by reason", "reason",
              m.snapshots_rejected)  # fmt: skip
    yield _by("snapshots_deleted", "snapshots deleted by retention (age or size) or as files a "
              "crash left unindexed (orphan)", "reason",
              {k: m.snapshots_deleted[k] for k in ("age", "size", "orphan")})  # fmt: skip
    yield _one("snapshots_damaged",
               "stored snapshots not served: file missing or not matching its sha256",
               m.snapshots_damaged)  # fmt: skip
    yield _one("snapshots_waited", "snapshots that arrived before their event and waited for it",
               m.snapshots_waited)  # fmt: skip
    yield GaugeMetricFamily("edge_hub_snapshots_pending", "snapshots waiting for their event",
                            value=m.snapshots_pending)  # fmt: skip
    yield GaugeMetricFamily("edge_hub_snapshots_pending_bytes", "bytes of the snapshots waiting",
                            value=m.snapshots_pending_bytes)  # fmt: skip


def new_registry(
    metrics: HubMetrics, extra: Callable[[], Mapping[str, float]] | None = None
) -> CollectorRegistry:
    """A registry of one hub's own (``auto_describe=False``: registering collects nothing)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(metrics, extra))
    return registry


def render(registry: CollectorRegistry) -> str:
    """The text exposition (version 0.0.4) of ``registry``."""
    return generate_latest(registry).decode()
