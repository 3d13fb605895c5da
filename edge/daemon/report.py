"""What the daemon says about itself: component health (what the supervisor polls),
``/healthz`` and ``/metrics``."""

from __future__ import annotations

import time
from typing import Any

from edge.config import DeviceConfig
from edge.daemon.generation import DaemonBase
from edge.health import HealthServer
from edge.pipeline import prometheus
from edge.runtime import accelerator_fallbacks
from edge.sinks import SinkStats
from edge.stats import ModelSource, SnapshotStats
from edge.supervise import ComponentHealth
from edge.supervisor import Verdict


class Reporting(DaemonBase):
    """``components`` (each stream, sink and the listener), ``health`` and ``metrics_text``,
    and the listener that serves the last two."""

    def _health_server(self, cfg: DeviceConfig) -> HealthServer | None:
        """A bound (not yet started) listener, or None when disabled."""
        if not cfg.health.enabled:
            return None
        return HealthServer(cfg.health.host, cfg.health.port, self.health, self.metrics_text)

    def components(self) -> list[ComponentHealth]:
        """Every component's health: each stream's threads, each sink (and its threads),
        the health listener. What the supervisor polls."""
        out: list[ComponentHealth] = []
        running = self._running
        if running is not None:
            for r in running.runners:
                out.extend(r.health())
            out.extend(running.fanout.health())
            if running.encoder is not None:
                out.extend(running.encoder.health())
        health = self._health
        if health is not None:
            out.extend(health.health())
        out.append(self._ota.health(self.cfg, self._model_sources()))
        return out

    def _model_sources(self) -> dict[str, ModelSource]:
        """Where each running detector's model came from: an OTA update or the config."""
        running = self._running
        out: dict[str, ModelSource] = {}
        for r in running.runners if running is not None else []:
            for slot in r.slots:
                out.setdefault(slot.name, self._ota.source(slot.name, slot.model))
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        running = self._running
        runners = running.runners if running is not None else []
        up = {r.cfg.name: r.healthy() for r in runners}
        verdict = Verdict(tuple(self.components()))  # now, not as of the last poll
        ok = bool(up) and all(up.values()) and verdict.ok
        # what each detector really runs on (a requested delegate may have fallen back)
        accel: dict[str, dict[str, object]] = {}
        models: dict[str, dict[str, object]] = {}
        for r in runners:
            for slot in r.slots:
                accel.setdefault(slot.name, {})[r.cfg.name] = slot.accelerator.to_json()
                m = slot.model.manifest
                models.setdefault(slot.name, {
                    "model": m.name, "version": m.version, "sha256": m.short_sha,
                    "source": self._ota.source(slot.name, slot.model),
                    "counter": self._ota.counter(slot.name),
                })  # fmt: skip
        return ok, {
            "ok": ok,
            "device_id": self.cfg.device_id,
            "streams": up,
            # which camera each stream reads, as the operator knows it (password masked)
            "sources": {r.cfg.name: r.cfg.display_source for r in runners},
            "components": verdict.to_json(),
            "accelerators": accel,
            "models": models,  # per detector: what runs, from an OTA update or the config
        }

    def metrics_text(self) -> str:
        running = self._running
        runners = running.runners if running is not None else []
        extra = {
            "edgewise_events_emitted_total": float(self.events_total),
            "edgewise_config_reloads_total": float(self.reloads),
            "edgewise_config_reload_failures_total": float(self.reload_failures),
            "edgewise_uptime_seconds": time.monotonic() - self.t_start,
            "edgewise_accelerator_fallbacks_total": float(accelerator_fallbacks.value),
        }
        text = prometheus(
            [r.metrics for r in runners], {r.cfg.name: r.healthy() for r in runners}, extra
        )
        shots = self._snapshot_stats()
        return (
            text
            + supervisor_metrics(tuple(self.components()), self._sink_stats)
            + snapshot_metrics(shots)
        )

    def _snapshot_stats(self) -> SnapshotStats:
        running = self._running
        encoder = running.encoder if running is not None else None
        return self._snapshot_counters.stats(encoder.queue_depth if encoder is not None else 0)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def supervisor_metrics(comps: tuple[ComponentHealth, ...], sinks: dict[str, SinkStats]) -> str:
    """Component up/restarts and sink failures/losses in the Prometheus text format."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str, rows: list[tuple[str, str, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f'{name}{{{label}="{_esc(v)}"}} {n:.6g}' for label, v, n in rows)

    family("edgewise_component_up", "gauge", "1 while the component is healthy",
           [("component", c.name, float(c.ok)) for c in comps])  # fmt: skip
    family("edgewise_thread_restarts_total", "counter", "Restarts of a component's thread",
           [("component", c.name, float(c.restarts)) for c in comps])  # fmt: skip
    family("edgewise_sink_failures_total", "counter", "Calls into a sink that failed",
           [("sink", n, float(st.failures)) for n, st in sorted(sinks.items())])  # fmt: skip
    family("edgewise_events_lost_total", "counter", "Events a sink failed on or refused",
           [("sink", n, float(st.lost)) for n, st in sorted(sinks.items())])  # fmt: skip
    family("edgewise_snapshots_lost_total", "counter", "Snapshots a sink failed on",
           [("sink", n, float(st.snapshots_lost)) for n, st in sorted(sinks.items())])  # fmt: skip
    return "\n".join(out) + "\n"


def snapshot_metrics(s: SnapshotStats) -> str:
    """Event snapshots (``edge.snapshots``) in the Prometheus text format."""
    rows = [
        "# HELP edgewise_snapshots_taken_total Snapshot JPEGs handed to the sinks",
        "# TYPE edgewise_snapshots_taken_total counter",
        f"edgewise_snapshots_taken_total {s.taken}",
        "# HELP edgewise_snapshots_dropped_total Snapshot JPEGs not taken, by reason",
        "# TYPE edgewise_snapshots_dropped_total counter",
        *(f'edgewise_snapshots_dropped_total{{reason="{_esc(r)}"}} {n}'
          for r, n in sorted(s.dropped.items())),
        "# HELP edgewise_snapshot_encode_ms Median time to encode one event's snapshots (ms)",
        "# TYPE edgewise_snapshot_encode_ms gauge",
        f"edgewise_snapshot_encode_ms {s.encode_ms:.6g}",
        "# HELP edgewise_snapshot_queue_depth Snapshot encode jobs waiting",
        "# TYPE edgewise_snapshot_queue_depth gauge",
        f"edgewise_snapshot_queue_depth {s.queue_depth}",
    ]  # fmt: skip
    return "\n".join(rows) + "\n"
