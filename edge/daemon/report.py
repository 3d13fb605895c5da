"""What the daemon says about itself: component health (what the supervisor polls),
``/healthz`` and ``/metrics``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from edge.config import DeviceConfig
from edge.daemon.generation import DaemonBase
from edge.health import HealthServer
from edge.stats import ModelSource, SnapshotStats
from edge.supervise import ComponentHealth
from edge.supervisor import Verdict

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry


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
        """The Prometheus exposition: ``edge.daemon.exposition``, imported on first use."""
        from edge.daemon.exposition import render

        return render(self._metrics_registry)

    @functools.cached_property
    def _metrics_registry(self) -> CollectorRegistry:
        from edge.daemon.exposition import new_registry

        return new_registry(self)

    def _snapshot_stats(self) -> SnapshotStats:
        running = self._running
        encoder = running.encoder if running is not None else None
        return self._snapshot_counters.stats(encoder.queue_depth if encoder is not None else 0)
