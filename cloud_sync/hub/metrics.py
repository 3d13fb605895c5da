"""The hub's counters and their Prometheus text form."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


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
    write_seconds: float = 0.0
    write_errors: int = 0
    sse_clients: int = 0
    sse_sent: int = 0
    mqtt_connected: bool = False
    mqtt_shared: bool = False
    snapshots_stored: int = 0
    snapshots_duplicate: int = 0
    snapshots_rejected: Counter[str] = field(default_factory=Counter)  # by reason
    snapshots_deleted: Counter[str] = field(default_factory=Counter)  # retention: age, size
    snapshots_damaged: int = 0
    snapshots_pending: int = 0
    snapshots_waited: int = 0
    snapshots_pending_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def render(self, gauges: dict[str, float]) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: dict[str, float]) -> None:
            lines.append(f"# HELP edge_hub_{name} {help_}")
            lines.append(f"# TYPE edge_hub_{name} {kind}")
            for labels, v in samples.items():
                lines.append(f"edge_hub_{name}{labels} {v:g}")

        with self.lock:
            metric(
                "messages_received_total", "counter", "MQTT messages received by topic kind",
                {f'{{kind="{k}"}}': v for k, v in sorted(self.received.items())} or {"": 0},
            )  # fmt: skip
            metric(
                "messages_rejected_total", "counter", "messages refused, by reason",
                {f'{{reason="{k}"}}': v for k, v in sorted(self.rejected.items())} or {"": 0},
            )  # fmt: skip
            metric(
                "messages_quarantined_total", "counter",
                "messages or events kept in the quarantine table instead of stored, by reason",
                {f'{{reason="{k}"}}': v for k, v in sorted(self.quarantined.items())} or {"": 0},
            )  # fmt: skip
            metric(
                "quarantine_failures_total", "counter",
                "messages that could not even be quarantined (logged)",
                {"": self.quarantine_failed},
            )  # fmt: skip
            metric(
                "rows_unreadable_total", "counter",
                "stored rows skipped by a reader (non-finite number, time out of range), by table",
                {f'{{table="{k}"}}': v for k, v in sorted(self.unreadable.items())} or {"": 0},
            )  # fmt: skip
            metric(
                "hub_acks_total", "counter", "HubAckV1 messages published to devices",
                {"": self.hub_acks},
            )  # fmt: skip
            metric(
                "hub_online_total", "counter",
                "HubOnlineV1 announcements (one per (re)subscription): devices resend unacked rows",
                {"": self.hub_online_sent},
            )  # fmt: skip
            metric(
                "hub_ack_failures_total", "counter",
                "HubAckV1 publishes paho refused (disconnected); devices resend",
                {"": self.hub_ack_failures},
            )  # fmt: skip
            metric(
                "events_stored_total", "counter", "events stored (new)", {"": self.events_stored}
            )
            metric(
                "events_duplicate_total", "counter", "events already stored (redelivered)",
                {"": self.events_duplicate},
            )  # fmt: skip
            metric("db_batches_total", "counter", "write transactions", {"": self.batches_written})
            metric("db_write_seconds_total", "counter", "time in writes", {"": self.write_seconds})
            metric(
                "db_write_errors_total",
                "counter",
                "failed writes (retried)",
                {"": self.write_errors},
            )
            metric("sse_clients", "gauge", "open /api/stream connections", {"": self.sse_clients})
            metric(
                "sse_events_sent_total",
                "counter",
                "events sent on /api/stream",
                {"": self.sse_sent},
            )
            metric(
                "mqtt_connected",
                "gauge",
                "1 while connected to the broker",
                {"": int(self.mqtt_connected)},
            )
            metric(
                "mqtt_shared_subscription",
                "gauge",
                "1 when a v5 shared subscription is used",
                {"": int(self.mqtt_shared)},
            )
            self._render_snapshots(metric)
        for name, v in sorted(gauges.items()):
            metric(name, "gauge", name.replace("_", " "), {"": v})
        return "\n".join(lines) + "\n"

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

    def _render_snapshots(self, metric: Callable[[str, str, str, dict[str, float]], None]) -> None:
        """The snapshot counters (issue 13); the caller holds the lock."""
        metric("snapshots_stored_total", "counter", "snapshots stored (new)",
               {"": self.snapshots_stored})  # fmt: skip
        metric(
            "snapshots_duplicate_total", "counter",
            "snapshots already stored (a resend; nothing written)", {"": self.snapshots_duplicate},
        )  # fmt: skip
        metric(
            "snapshots_rejected_total", "counter", "snapshot messages refused, by reason",
            {f'{{reason="{k}"}}': v for k, v in sorted(self.snapshots_rejected.items())}
            or {"": 0},
        )  # fmt: skip
        metric(
            "snapshots_deleted_total", "counter", "snapshots deleted by retention (age or size)",
            {f'{{reason="{k}"}}': self.snapshots_deleted[k] for k in ("age", "size")},
        )  # fmt: skip
        metric(
            "snapshots_damaged_total", "counter",
            "stored snapshots not served: file missing or not matching its sha256",
            {"": self.snapshots_damaged},
        )  # fmt: skip
        metric(
            "snapshots_waited_total", "counter",
            "snapshots that arrived before their event and waited for it",
            {"": self.snapshots_waited},
        )  # fmt: skip
        metric("snapshots_pending", "gauge", "snapshots waiting for their event",
               {"": self.snapshots_pending})  # fmt: skip
        metric("snapshots_pending_bytes", "gauge", "bytes of the snapshots waiting",
               {"": self.snapshots_pending_bytes})  # fmt: skip
