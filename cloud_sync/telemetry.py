"""Periodic health: the daemon's figures, the outbox, the MQTT link and the host."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from pydantic import ValidationError

from cloud_sync.outbox import OutboxStats
from cloud_sync.schema import DetectorStatsV1, OutboxStatsV1, StreamStatsV1, TelemetryV1

log = logging.getLogger(__name__)

THERMAL = Path("/sys/class/thermal")


def temperature_c(root: Path = THERMAL) -> float | None:
    """The hottest readable ``thermal_zone*/temp`` (millidegrees) in °C; None where none is."""
    best: float | None = None
    for zone in sorted(root.glob("thermal_zone*/temp")):
        try:
            value = int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
        best = value if best is None else max(best, value)
    return best


_STREAM_KEYS = ("fps_in", "fps_processed", "dropped", "gated", "reconnects")


def _detector(d: dict[str, Any]) -> dict[str, Any]:
    """``inference_ms`` may be one number or one per stream (the daemon's shape): the mean."""
    ms = d.get("inference_ms")
    if isinstance(ms, dict):
        values = [float(v) for v in ms.values() if v is not None]
        ms = sum(values) / len(values) if values else 0.0
    out: dict[str, Any] = {"inference_ms": ms if ms is not None else 0.0}
    if d.get("calls") is not None:
        out["calls"] = d["calls"]
    return out


class Telemetry:
    """Builds TelemetryV1 payloads. CPU percent is measured since the previous call."""

    def __init__(self, device_id: str, boot_id: str) -> None:
        self.device_id = device_id
        self.boot_id = boot_id
        self.started = time.monotonic()
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # prime: the first call returns 0.0
        self._warned = False

    def build(self, daemon: dict[str, Any], outbox: OutboxStats, reconnects: int) -> TelemetryV1:
        streams: dict[str, StreamStatsV1] = {}
        detectors: dict[str, DetectorStatsV1] = {}
        try:
            for name, st in dict(daemon.get("streams", {})).items():
                picked = {k: st[k] for k in _STREAM_KEYS if st.get(k) is not None}
                streams[str(name)] = StreamStatsV1.model_validate(picked)
            for name, d in dict(daemon.get("detectors", {})).items():
                detectors[str(name)] = DetectorStatsV1.model_validate(_detector(d))
        except (ValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            if not self._warned:  # a daemon bug, not the device's health: say it once
                log.warning("telemetry: DeviceControl.stats() has an unexpected shape: %s", exc)
                self._warned = True
        with self._proc.oneshot():
            cpu = self._proc.cpu_percent(None)
            rss = self._proc.memory_info().rss / (1024 * 1024)
        return TelemetryV1(
            device_id=self.device_id,
            boot_id=self.boot_id,
            ts=datetime.now(UTC),
            uptime_s=time.monotonic() - self.started,
            streams=streams,
            detectors=detectors,
            outbox=OutboxStatsV1(
                depth=outbox.depth,
                oldest_age_s=outbox.oldest_age_s,
                dropped=outbox.dropped + outbox.rejected,
                bytes=outbox.bytes,
            ),
            reconnects=reconnects,
            cpu_percent=cpu,
            rss_mb=round(rss, 1),
            temperature_c=temperature_c(),
        )
