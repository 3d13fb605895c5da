"""Periodic health: the daemon's figures (``edge.stats``), the outbox, the link, the host.

``Telemetry.build`` maps ``DeviceStats`` onto ``TelemetryV1`` field by field.
``Telemetry.payload`` is what the publisher's sender thread calls: it never
raises. A section that cannot be built (the daemon's ``stats()`` failing, an
outbox figure out of range, such as the ``depth=-1`` two daemons sharing one
data dir produced) is left out of that payload, counted in ``build_errors`` and
named in ``errors``; the rest still goes out, and delivery goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import psutil

from cloud_sync.outbox import OutboxStats
from cloud_sync.outbox.snapshots import SnapshotStats
from cloud_sync.schema import (
    DetectorStatsV1,
    ModelRefV1,
    OutboxStatsV1,
    SinkStatsV1,
    SnapshotStatsV1,
    StreamStatsV1,
    TelemetryV1,
)
from edge.compat import UTC
from edge.redact import redact
from edge.stats import DetectorStats, DeviceStats, SinkStats, StreamStats

log = logging.getLogger(__name__)
_S = TypeVar("_S")
_T = TypeVar("_T")

THERMAL = Path("/sys/class/thermal")
_MAX_ERRORS = 16  # TelemetryV1.errors
_ERROR_CHARS = 500  # TelemetryV1.errors items are at most 512 characters


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


def stream_v1(s: StreamStats) -> StreamStatsV1:
    return StreamStatsV1(
        kind=s.kind,
        fps_in=s.fps_in,
        fps_processed=s.fps_processed,
        dropped=s.dropped,
        gated=s.gated,
        reconnects=s.reconnects,
        frames_in=s.frames_in,
        processed=s.processed,
        skipped=s.skipped,
        restarts=s.restarts,
        queue_depth=dict(s.queue_depth),
        zones={z: dict(c) for z, c in s.zones.items()},
        lines={ln: {"in": c.get("in", 0), "out": c.get("out", 0)} for ln, c in s.lines.items()},
        error=redact(s.error)[:_ERROR_CHARS] if s.error is not None else None,
    )


def detector_v1(d: DetectorStats) -> DetectorStatsV1:
    return DetectorStatsV1(
        inference_ms=d.mean_inference_ms,
        calls=d.calls,
        model=ModelRefV1(name=d.model, version=d.version, sha256=d.sha256),
        inference_ms_by_stream=dict(d.inference_ms),
        accelerator=d.accelerator,
        source=d.source,
        counter=d.counter,
    )


def outbox_v1(o: OutboxStats) -> OutboxStatsV1:
    return OutboxStatsV1(
        depth=o.depth,
        oldest_age_s=o.oldest_age_s,
        dropped=o.dropped + o.rejected,
        bytes=o.bytes,
        unacked=o.delivered_unacked,
        dead_letters=o.dead_letters,
        append_failures=o.append_failures,
        events_lost=o.events_lost,
        next_seq=o.next_seq,
    )


def snapshots_v1(s: SnapshotStats) -> SnapshotStatsV1:
    return SnapshotStatsV1(
        queued=s.queued, bytes=s.bytes, sent=s.sent, dropped=s.dropped, lost=s.lost,
        refused=s.refused,
    )  # fmt: skip


def sink_v1(s: SinkStats) -> SinkStatsV1:
    return SinkStatsV1(failures=s.failures, events_lost=s.events_lost)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # pydantic's messages span lines
    return redact(f"{type(exc).__name__}: {text}")


class Telemetry:
    """Builds TelemetryV1 payloads. CPU percent is measured since the previous call."""

    def __init__(self, device_id: str, boot_id: str) -> None:
        self.device_id = device_id
        self.boot_id = boot_id
        self.started = time.monotonic()
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # prime: the first call returns 0.0
        self.build_errors = 0  # sections left out since boot
        self.failed = 0  # payloads not sent at all (should stay 0)
        self._logged: set[str] = set()

    def build(
        self,
        stats: DeviceStats | None,
        outbox: OutboxStats | None,
        reconnects: int,
        snapshots: SnapshotStats | None = None,
    ) -> TelemetryV1:
        """``stats`` / ``outbox`` None: that section could not be read (see ``payload``).
        Raises only where a figure is out of range; ``payload`` catches that per section."""
        errors: list[str] = []
        streams: dict[str, StreamStatsV1] = {}
        detectors: dict[str, DetectorStatsV1] = {}
        sinks: dict[str, SinkStatsV1] = {}
        if stats is not None:
            for name, st in stats.streams.items():
                self._section(f"streams.{name}", errors, stream_v1, st, streams, name)
            for name, d in stats.detectors.items():
                self._section(f"detectors.{name}", errors, detector_v1, d, detectors, name)
            for name, sk in stats.sinks.items():
                self._section(f"sinks.{name}", errors, sink_v1, sk, sinks, name)
        box: dict[str, OutboxStatsV1] = {}
        if outbox is not None:
            self._section("outbox", errors, outbox_v1, outbox, box, "outbox")
        snaps: dict[str, SnapshotStatsV1] = {}
        if snapshots is not None:
            self._section("snapshots", errors, snapshots_v1, snapshots, snaps, "snapshots")
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
            outbox=box.get("outbox"),
            snapshots=snaps.get("snapshots"),
            sinks=sinks,
            reconnects=reconnects,
            cpu_percent=cpu,
            rss_mb=round(rss, 1),
            temperature_c=temperature_c(),
            ota_error=(
                stats.ota_error[:_ERROR_CHARS]
                if stats is not None and stats.ota_error is not None
                else None
            ),
            build_errors=self.build_errors,
            errors=errors[:_MAX_ERRORS],
        )

    def payload(
        self,
        stats: Callable[[], DeviceStats] | None,
        outbox: Callable[[], OutboxStats],
        reconnects: int,
        snapshots: Callable[[], SnapshotStats] | None = None,
    ) -> bytes | None:
        """The JSON to publish; never raises (the sender thread calls it). None only if
        not even the bare payload could be built (counted in ``failed``)."""
        errors: list[str] = []
        got_stats = self._read("DeviceControl.stats()", stats, errors) if stats else None
        got_outbox = self._read("outbox.stats()", outbox, errors)
        got_snaps = self._read("snapshots.stats()", snapshots, errors) if snapshots else None
        try:
            t = self.build(got_stats, got_outbox, reconnects, got_snaps)
            if errors:
                t = t.model_copy(update={"errors": (errors + list(t.errors))[:_MAX_ERRORS]})
            return t.model_dump_json(exclude_none=True).encode()
        except Exception as exc:  # telemetry must never stop delivery
            self.failed += 1
            self.build_errors += 1
            self._log("telemetry", exc)
            return None

    def _read(self, what: str, fn: Callable[[], _T], errors: list[str]) -> _T | None:
        try:
            return fn()
        except Exception as exc:  # a daemon or outbox bug: reported, not fatal
            self.build_errors += 1
            errors.append(f"{what} failed: {_why(exc)}"[:_ERROR_CHARS])
            self._log(what, exc)
            return None

    def _section(
        self,
        where: str,
        errors: list[str],
        make: Callable[[_S], _T],
        figures: _S,
        into: dict[str, _T],
        key: str,
    ) -> None:
        try:
            into[key] = make(figures)
        except Exception as exc:  # a bad figure leaves out its section, not the payload
            self.build_errors += 1
            errors.append(f"{where} left out: {_why(exc)}"[:_ERROR_CHARS])
            self._log(where, exc)

    def _log(self, where: str, exc: BaseException) -> None:
        """Once per place and kind of error: a figure that stays bad must not flood the log."""
        key = f"{where}|{type(exc).__name__}"
        if key not in self._logged:
            self._logged.add(key)
            log.warning("telemetry: %s: %s (counted in build_errors)", where, _why(exc))
