"""``edge run``: streams, detectors, sinks and the health listener, driven by one config.

SIGTERM/SIGINT stop capture, drain the queues, end open events, flush the sinks
and exit 0 within 5 s. SIGHUP reloads the config: a new config that fails
validation or whose models cannot load is rejected and the old one keeps
running. The daemon implements ``edge.control.DeviceControl`` for the cloud.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import cv2

from edge.config import DeviceConfig, SinkConfig, load_config, parse_config, resolve_paths
from edge.errors import ConfigError, EdgeError, InputError
from edge.events import Event, EventSink, uuid7
from edge.health import HealthServer
from edge.models.resolve import resolve
from edge.pipeline import DetectorSlot, StreamRunner, load_slot, prometheus
from edge.pipeline.slots import open_detector
from edge.profiles import Profile, get_profile
from edge.sinks import DaemonContext, SinkFanout, build_sink
from edge.stats import DetectorStats, DeviceStats

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0


KeyedSink = tuple[str, EventSink]


def sink_key(sc: SinkConfig, cfg: DeviceConfig) -> str:
    """What a sink was built from: an unchanged sink survives a reload as it is."""
    sync = cfg.sync.model_dump_json() if sc.type == "mqtt" and cfg.sync is not None else ""
    return f"{cfg.device_id}|{cfg.data_dir}|{sc.model_dump_json()}|{sync}"


def close_later(sinks: list[KeyedSink]) -> None:
    """Close replaced sinks off the caller's thread: a reload that came in as a cloud
    command runs on the MQTT sink's own command thread, which must not join itself."""

    def close_all() -> None:
        for _key, sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # closing a replaced sink must not stop the daemon
                log.error("closing a replaced sink failed: %s", exc)

    if sinks:
        threading.Thread(target=close_all, name="sink-closer", daemon=False).start()


class _Running:
    """One generation of the pipeline: what a config built. On reload the streams are
    rebuilt; sinks whose config did not change (the MQTT outbox and connection above
    all) carry over to the next generation."""

    def __init__(
        self, runners: list[StreamRunner], fanout: SinkFanout, sinks: list[KeyedSink]
    ) -> None:
        self.runners = runners
        self.fanout = fanout
        self.sinks = sinks

    def stop(self, budget_s: float, *, close_sinks: bool = True) -> None:
        deadline = time.monotonic() + budget_s
        for r in self.runners:
            r.stop()
        for r in self.runners:
            if not r.join(max(0.0, deadline - time.monotonic())):
                log.warning("%s: did not finish in time", r.cfg.name)
        self.fanout.flush()
        if close_sinks:
            self.fanout.close()


class Daemon:
    def __init__(self, config_path: Path, cfg: DeviceConfig | None = None) -> None:
        self.config_path = config_path
        self.cfg = cfg if cfg is not None else load_config(config_path)
        self.boot_id = uuid7()
        self.t_start = time.monotonic()
        self.first_event_s: float | None = None
        self.events_total = 0
        self._emit_lock = threading.Lock()
        self._state_lock = threading.RLock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._running: _Running | None = None
        self._health: HealthServer | None = None
        self.reloads = 0
        self.reload_failures = 0

    # -- building ------------------------------------------------------------------

    def _context(self, cfg: DeviceConfig) -> DaemonContext:
        return DaemonContext(cfg.device_id, self.boot_id, cfg, cfg.data_dir, self)

    @staticmethod
    def _profile(cfg: DeviceConfig) -> Profile | None:
        return get_profile(cfg.profile) if cfg.profile else None

    def _load_slots(self, cfg: DeviceConfig) -> dict[str, list[DetectorSlot]]:
        """Each stream's detectors, one instance per stream (interpreters are not shared)."""
        slots: dict[str, list[DetectorSlot]] = {}
        profile = self._profile(cfg)
        try:
            for s in cfg.streams:
                slots[s.name] = []
                for name in s.detectors:
                    slots[s.name].append(
                        load_slot(
                            name,
                            cfg.detectors[name],
                            s.thresholds.get(name),
                            cfg.models_home,
                            profile,
                        )
                    )
        except BaseException:
            for group in slots.values():
                for slot in group:
                    slot.close()
            raise
        return slots

    def _build(
        self,
        cfg: DeviceConfig,
        slots: dict[str, list[DetectorSlot]],
        pool: list[KeyedSink] | None = None,
    ) -> _Running:
        """Build a generation; sinks are taken from ``pool`` (the previous generation's)
        where their config is unchanged. What is taken is removed from ``pool``; on
        failure it is put back, and only the sinks built here are closed."""
        pool = pool if pool is not None else []
        runners: list[StreamRunner] = []
        keyed: list[KeyedSink] = []
        built: list[EventSink] = []
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            ctx = self._context(cfg)
            for sc in cfg.sinks:
                key = sink_key(sc, cfg)
                reuse = next((i for i, (k, _) in enumerate(pool) if k == key), None)
                if reuse is not None:
                    keyed.append(pool.pop(reuse))
                else:
                    sink = build_sink(sc, ctx)
                    built.append(sink)
                    keyed.append((key, sink))
            fanout = SinkFanout(
                [s for _, s in keyed], self._sink_error, [sc.type for sc in cfg.sinks]
            )

            def emit(events: list[Event]) -> None:
                self._emit(events, fanout)

            for s in cfg.streams:
                runners.append(StreamRunner(s, slots[s.name], cfg.tracking, emit))
        except BaseException:
            for r in runners:
                r.source.close()
            for key, sink in keyed:
                if any(sink is b for b in built):
                    sink.close()
                else:
                    pool.append((key, sink))
            for group in slots.values():
                for slot in group:
                    slot.close()
            raise
        return _Running(runners, fanout, keyed)

    @staticmethod
    def _sink_error(sink: Any, exc: Exception) -> None:
        log.error("sink %s failed: %s", type(sink).__name__, exc)

    def _emit(self, events: list[Event], fanout: SinkFanout) -> None:
        """Events of one generation go to that generation's sinks (ends arrive while stopping)."""
        with self._emit_lock:
            self.events_total += len(events)
            if self.first_event_s is None:
                self.first_event_s = time.monotonic() - self.t_start
                log.info("first event %.3f s after start", self.first_event_s)
            fanout.emit_many(events)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        running = self._build(self.cfg, self._load_slots(self.cfg))
        with self._state_lock:
            self._running = running
        for r in running.runners:
            r.start()
        self._start_health(self.cfg)
        log.info(
            "running device %s: %d stream(s), %d detector(s), boot %s",
            self.cfg.device_id, len(running.runners), len(self.cfg.detectors), self.boot_id,
        )  # fmt: skip

    def _start_health(self, cfg: DeviceConfig) -> None:
        if not cfg.health.enabled:
            return
        self._health = HealthServer(
            cfg.health.host, cfg.health.port, self.health, self.metrics_text
        )
        self._health.start()

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self._stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            log.info("SIGHUP: reloading %s", self.config_path)
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def run(self) -> int:
        """Start, serve until stopped or every file source ended, then shut down; exit code."""
        self.start()
        try:
            while not self._stop.wait(0.1):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                running = self._running
                if running is not None and all(r.done.is_set() for r in running.runners):
                    errors = [r.metrics.error for r in running.runners if r.metrics.error]
                    log.info("every source ended; stopping")
                    if errors:
                        self.shutdown()
                        raise InputError(errors[0])
                    break
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        with self._state_lock:
            running, self._running = self._running, None
            if running is not None:
                running.stop(SHUTDOWN_BUDGET_S)
                log.info("stopped: %d event(s) emitted", self.events_total)
            if self._health is not None:
                self._health.stop()
                self._health = None

    # -- reload ----------------------------------------------------------------------

    def reload(self, cfg: DeviceConfig | None = None) -> bool:
        """Swap to a new config (default: re-read the file); False, old kept, if it is invalid."""
        try:
            new = cfg if cfg is not None else load_config(self.config_path)
            slots = self._load_slots(new)
        except EdgeError as exc:
            self.reload_failures += 1
            log.error("reload rejected, the old config keeps running: %s", exc)
            return False
        with self._state_lock:
            old = self._running
            pool: list[KeyedSink] = []
            if old is not None:
                old.stop(SHUTDOWN_BUDGET_S, close_sinks=False)
                pool = list(old.sinks)
            applied = True
            try:
                running = self._build(new, slots, pool)
            except EdgeError as exc:
                applied = False
                self.reload_failures += 1
                log.error("reload failed (%s); restarting the old config", exc)
                running = self._build(self.cfg, self._load_slots(self.cfg), pool)
                new = self.cfg
            close_later(pool)  # sinks the new config no longer has, or changed
            self._running = running
            for r in running.runners:
                r.start()
            if new.health != self.cfg.health and self._health is not None:
                self._health.stop()
                self._health = None
                self._start_health(new)
            self.cfg = new
            self.reloads += 1
        if applied:
            log.info("config reloaded: %d stream(s)", len(running.runners))
        return applied

    # -- DeviceControl ---------------------------------------------------------------

    def apply_config(self, text: str) -> None:
        origin = f"{self.config_path} (from the cloud)"
        cfg = resolve_paths(parse_config(text, origin), self.config_path.parent)
        if not self.reload(cfg):
            raise ConfigError(f"{origin}: the new config was rejected; see the daemon's log")
        fd, tmp = tempfile.mkstemp(dir=self.config_path.parent, prefix=".config-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(self.config_path)

    def swap_model(self, detector: str, bundle: Path) -> dict[str, Any]:
        if detector not in self.cfg.detectors:
            raise ConfigError(
                f"swap_model: no detector {detector!r}; have {sorted(self.cfg.detectors)}"
            )
        dcfg = self.cfg.detectors[detector]
        model = resolve(str(bundle), self.cfg.models_home)
        with self._state_lock:
            running = self._running
            if running is None:
                raise EdgeError("swap_model: the daemon is not running")
            targets = [s for r in running.runners for s in r.slots if s.name == detector]
            for slot in targets:
                if (model.manifest.input.kind == "audio") != slot.is_audio:
                    raise InputError(
                        f"swap_model: {model.origin} takes {model.manifest.input.kind} input; "
                        f"detector {detector!r} runs on other input"
                    )
            loaded = []
            try:
                for _ in targets:
                    loaded.append(open_detector(dcfg, model, self._profile(self.cfg)))
            except BaseException:
                for det in loaded:
                    det.close()
                raise
            for slot, det in zip(targets, loaded, strict=True):
                slot.swap(model, det)
        m = model.manifest
        log.info("detector %s now runs %s %s (%s)", detector, m.name, m.version, m.short_sha)
        return {"detector": detector, "model": m.name, "version": m.version, "sha256": m.sha256,
                "streams": len(targets)}  # fmt: skip

    def snapshot(self, stream: str | None, max_bytes: int) -> bytes:
        running = self._running
        runners = running.runners if running is not None else []
        video = [r for r in runners if not r.cfg.is_audio]
        pick = [r for r in video if stream is None or r.cfg.name == stream]
        if not pick:
            raise InputError(
                f"snapshot: no video stream {stream!r}; have {[r.cfg.name for r in video]}"
            )
        image = pick[0].last_image
        if image is None:
            raise InputError(f"snapshot: stream {pick[0].cfg.name!r} has no frame yet")
        scale = 1.0
        while True:
            img = (
                image
                if scale == 1.0
                else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            )
            for quality in (90, 75, 60, 45, 30):
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
                if ok and buf.size <= max_bytes:
                    return bytes(buf.tobytes())
            if min(img.shape[:2]) < 16:
                raise InputError(f"snapshot: cannot fit a JPEG in {max_bytes} bytes")
            scale *= 0.7

    def stats(self) -> DeviceStats:
        """A snapshot of every stream, detector and sink (``edge.stats``), for telemetry."""
        running = self._running
        runners = running.runners if running is not None else []
        per_stream: dict[str, dict[str, float]] = {}
        calls: dict[str, int] = {}
        first: dict[str, DetectorSlot] = {}
        for r in runners:
            for s in r.slots:
                first.setdefault(s.name, s)
                timing = r.metrics.inference(s.name)
                ms = per_stream.setdefault(s.name, {})
                calls[s.name] = calls.get(s.name, 0) + (timing.count if timing else 0)
                if timing is not None:
                    ms[r.cfg.name] = round(timing.ema_ms, 3)
        detectors = {
            name: DetectorStats(
                model=slot.model.manifest.name,
                version=slot.model.manifest.version,
                sha256=slot.model.manifest.short_sha,
                inference_ms=per_stream[name],
                calls=calls[name],
                accelerator=slot.accelerator.to_json(),
            )
            for name, slot in first.items()
        }
        return DeviceStats(
            device_id=self.cfg.device_id,
            boot_id=self.boot_id,
            uptime_s=round(time.monotonic() - self.t_start, 1),
            events=self.events_total,
            reloads=self.reloads,
            streams={r.cfg.name: r.stats() for r in runners},
            detectors=detectors,
            sinks=running.fanout.stats() if running is not None else {},
        )

    # -- health ----------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        running = self._running
        runners = running.runners if running is not None else []
        up = {r.cfg.name: r.healthy() for r in runners}
        ok = bool(up) and all(up.values())
        return ok, {"ok": ok, "device_id": self.cfg.device_id, "streams": up}

    def metrics_text(self) -> str:
        running = self._running
        runners = running.runners if running is not None else []
        extra = {
            "edgewise_events_emitted_total": float(self.events_total),
            "edgewise_config_reloads_total": float(self.reloads),
            "edgewise_config_reload_failures_total": float(self.reload_failures),
            "edgewise_uptime_seconds": time.monotonic() - self.t_start,
        }
        return prometheus(
            [r.metrics for r in runners], {r.cfg.name: r.healthy() for r in runners}, extra
        )
