"""``edge run``: streams, detectors, sinks and the health listener, driven by one config.

SIGTERM/SIGINT stop capture, drain the queues, end open events, flush the sinks
and exit 0 within 5 s. SIGHUP reloads the config, transactionally: the new
config, its models, its data dir (and that dir's lock) and the sinks that can be
opened beside the running ones are built and checked while the old pipeline runs;
any failure, of any kind, leaves the old one running untouched. The daemon
implements ``edge.control.DeviceControl`` for the cloud.

One daemon per data dir (``edge.lock``); a supervisor (``edge.supervisor``) watches
every component, and ``run`` raises ``ComponentFailedError`` (exit 4) when one has failed
for good or nothing is left running: a device must never look "finished" (exit 0)
to its service manager because a part of it died.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import cv2

from edge.config import DeviceConfig, SinkConfig, load_config, parse_config, resolve_paths
from edge.control import ReplyRoute
from edge.errors import ConfigError, EdgeError, InputError
from edge.events import Event, EventSink, uuid7
from edge.health import HealthServer
from edge.lock import DataDirLock
from edge.models.resolve import resolve
from edge.pipeline import DetectorSlot, StreamRunner, load_slot, prometheus
from edge.pipeline.slots import open_detector
from edge.profiles import Profile, get_profile
from edge.runtime import accelerator_fallbacks
from edge.sinks import DaemonContext, SinkFanout, SinkStats, build_sink, sink_names
from edge.stats import DetectorStats, DeviceStats
from edge.stats import SinkStats as SinkFigures
from edge.supervise import ComponentHealth
from edge.supervisor import ComponentFailedError, Supervisor, Verdict

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 4.0


KeyedSink = tuple[str, EventSink]
Slots = dict[str, list[DetectorSlot]]


def sink_key(sc: SinkConfig, cfg: DeviceConfig) -> str:
    """What a sink was built from: an unchanged sink survives a reload as it is."""
    sync = cfg.sync.model_dump_json() if sc.type == "mqtt" and cfg.sync is not None else ""
    return f"{cfg.device_id}|{cfg.data_dir}|{sc.model_dump_json()}|{sync}"


def exclusive_resource(sc: SinkConfig, cfg: DeviceConfig) -> str | None:
    """What only one sink may hold at a time. For the MQTT sink: the device's broker
    identity (one client id: a second connection would take the session over, and a
    discarded one would publish a retained "stopped") and its outbox (the seq counter is
    held in memory). A new MQTT sink therefore opens only once the old streams stopped."""
    return "mqtt" if sc.type == "mqtt" else None


def describe(exc: BaseException) -> str:
    """An error for a one-line message: an EdgeError's own text, else its type and text."""
    return str(exc) if isinstance(exc, EdgeError) else f"{type(exc).__name__}: {exc}"


def close_slots(slots: Slots) -> None:
    for group in slots.values():
        for slot in group:
            try:
                slot.close()
            except Exception as exc:  # closing must not stop the daemon
                log.error("closing detector %s failed: %s", slot.name, exc)


def close_later(
    sinks: list[KeyedSink], slots: Slots | None = None, after: Callable[[], None] | None = None
) -> None:
    """Close replaced sinks (and models) off the caller's thread: a reload that came in as
    a cloud command runs on the MQTT sink's own command thread, which must not join
    itself. ``after`` runs once they are closed (releasing the old data dir's lock)."""

    def close_all() -> None:
        for _key, sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # closing a replaced sink must not stop the daemon
                log.error("closing a replaced sink failed: %s", exc)
        if slots:
            close_slots(slots)
        if after is not None:
            after()

    if sinks or slots or after:
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

    def slots(self) -> Slots:
        return {r.cfg.name: r.slots for r in self.runners}

    def stop(self, budget_s: float, *, close_sinks: bool = True) -> bool:
        """Stop the streams (drained, open events ended); True if every one finished."""
        deadline = time.monotonic() + budget_s
        for r in self.runners:
            r.stop()
        finished = True
        for r in self.runners:
            if not r.join(max(0.0, deadline - time.monotonic())):
                log.warning("%s: did not finish in time", r.cfg.name)
                finished = False
        self.fanout.flush()
        if close_sinks:
            self.fanout.close()
        return finished


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
        self._lock: DataDirLock | None = None
        self._replies = ReplyRoute()
        self._sink_stats: dict[str, SinkStats] = {}
        self.supervisor = Supervisor(self.components)
        self.reloads = 0
        self.reload_failures = 0

    # -- building ------------------------------------------------------------------

    def _context(self, cfg: DeviceConfig) -> DaemonContext:
        return DaemonContext(cfg.device_id, self.boot_id, cfg, cfg.data_dir, self, self._replies)

    @staticmethod
    def _profile(cfg: DeviceConfig) -> Profile | None:
        return get_profile(cfg.profile) if cfg.profile else None

    def _load_slots(self, cfg: DeviceConfig) -> Slots:
        """Each stream's detectors, one instance per stream (interpreters are not shared)."""
        slots: Slots = {}
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
            close_slots(slots)
            raise
        return slots

    def _build(
        self,
        cfg: DeviceConfig,
        slots: Slots,
        pool: list[KeyedSink] | None = None,
        *,
        own_slots: bool = True,
    ) -> _Running:
        """Build a generation; sinks are taken from ``pool`` (the previous generation's,
        and those a reload opened early) where their config is unchanged. What is taken
        is removed from ``pool``; on failure it is put back, only the sinks built here
        are closed, and the slots too if ``own_slots``."""
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
            names = sink_names(cfg.sinks)
            fanout = SinkFanout(
                [(n, s) for n, (_, s) in zip(names, keyed, strict=True)], self._sink_stats
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
            if own_slots:
                close_slots(slots)
            raise
        return _Running(runners, fanout, keyed)

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
        # one daemon per data dir, decided before any sink opens anything in it
        lock = DataDirLock(self.cfg.data_dir)
        lock.acquire()
        self._lock = lock
        try:
            running = self._build(self.cfg, self._load_slots(self.cfg))
            with self._state_lock:
                self._running = running
            for r in running.runners:
                r.start()
            self._health = self._health_server(self.cfg)
            if self._health is not None:
                self._health.start()
        except BaseException:
            self.shutdown()
            raise
        self.supervisor.ready()
        self.supervisor.poll()
        log.info(
            "running device %s: %d stream(s), %d detector(s), boot %s",
            self.cfg.device_id, len(running.runners), len(self.cfg.detectors), self.boot_id,
        )  # fmt: skip

    def _health_server(self, cfg: DeviceConfig) -> HealthServer | None:
        """A bound (not yet started) listener, or None when disabled."""
        if not cfg.health.enabled:
            return None
        return HealthServer(cfg.health.host, cfg.health.port, self.health, self.metrics_text)

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
        """Start, serve until stopped or every file source ended, then shut down; exit code.

        Raises ``ComponentFailedError`` (exit 4) when a component failed for good or no stream
        is left running, ``InputError`` (exit 2) when the sources ended with an error."""
        self.start()
        try:
            while not self._stop.wait(0.1):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self._check():
                    break
        finally:
            self.shutdown()
        return 0

    def _check(self) -> bool:
        """One turn of the supervisor; True when every source has ended cleanly."""
        verdict = self.supervisor.poll()
        if verdict.fatal:
            c = verdict.fatal[0]
            log.critical("%s failed for good: %s; shutting down", c.name, c.reason)
            raise ComponentFailedError(
                f"{c.name} failed for good ({c.reason}); exiting so the service manager "
                "restarts the daemon"
            )
        with self._state_lock:  # not while a reload swaps generations
            running = self._running
            if running is None or not running.runners:
                raise ComponentFailedError(
                    "no stream is running (a reload failed and the old config could not be "
                    "restarted; see the log); exiting so the service manager restarts the daemon"
                )
            if not all(r.done.is_set() for r in running.runners):
                return False
            errors = [r.metrics.error for r in running.runners if r.metrics.error]
        log.info("every source ended; stopping")
        if errors:
            raise InputError(errors[0])
        return True

    def shutdown(self) -> None:
        with self._state_lock:
            running, self._running = self._running, None
            if running is not None:
                self.supervisor.stopping()
                running.stop(SHUTDOWN_BUDGET_S)
                log.info("stopped: %d event(s) emitted", self.events_total)
            if self._health is not None:
                self._health.stop()
                self._health = None
            if self._lock is not None:  # last: nothing of ours has the data dir open now
                self._lock.release()
                self._lock = None

    # -- reload ----------------------------------------------------------------------

    def reload(self, cfg: DeviceConfig | None = None) -> bool:
        """Swap to a new config (default: re-read the file); False, old kept, on any failure."""
        try:
            self.apply(cfg)
        except Exception as exc:  # any failure keeps the old generation (logged in apply)
            log.debug("reload failed: %s", exc)
            return False
        return True

    def apply(self, cfg: DeviceConfig | None = None) -> None:
        """The transactional reload; raises ``ConfigError`` naming the cause if the new
        config was not applied (the old one then still runs), ``ComponentFailedError`` if even
        the old one could not be restarted."""
        try:
            new = cfg if cfg is not None else load_config(self.config_path)
            slots = self._load_slots(new)
        except Exception as exc:  # of any type: nothing has changed yet
            self._reject(f"reload rejected, the old config keeps running: {describe(exc)}")
        with self._state_lock:
            old = self._running
            if old is None:
                close_slots(slots)
                self._reject("reload rejected: the daemon is not running")
            try:
                prepared = self._prepare(new, old)
            except Exception as exc:  # of any type: the old generation was not touched
                close_slots(slots)
                self._reject(f"reload rejected, the old config keeps running: {describe(exc)}")
            self._switch(new, slots, old, *prepared)

    def _reject(self, message: str) -> NoReturn:
        self.reload_failures += 1
        log.error("%s", message)
        raise ConfigError(message)

    def _prepare(
        self, new: DeviceConfig, old: _Running
    ) -> tuple[DataDirLock | None, list[KeyedSink], HealthServer | None]:
        """Phase one, beside the running generation: the new data dir (created, locked,
        writable), the sinks that may be open beside the old ones, the new listener."""
        lock: DataDirLock | None = None
        early: list[KeyedSink] = []
        health: HealthServer | None = None
        try:
            if new.data_dir.resolve() != self.cfg.data_dir.resolve():
                lock = DataDirLock(new.data_dir)
                lock.acquire()  # creates it; a dir another daemon has is refused here
            else:
                new.data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=new.data_dir, prefix=".probe-"):
                pass  # writable (a read-only or full data dir fails here, not mid-switch)
            live = {k for k, _ in old.sinks}
            busy = {r for sc in self.cfg.sinks if (r := exclusive_resource(sc, self.cfg))}
            ctx = self._context(new)
            for sc in new.sinks:
                key = sink_key(sc, new)
                if key in live or exclusive_resource(sc, new) in busy:
                    continue  # carried over, or opened once the old one stopped
                early.append((key, build_sink(sc, ctx)))
            h_old, h_new = self.cfg.health, new.health
            moved = (h_new.host, h_new.port) != (h_old.host, h_old.port) or not h_old.enabled
            if h_new.enabled and (moved or self._health is None):
                health = self._health_server(new)
        except BaseException:
            for _key, sink in early:
                sink.close()
            if lock is not None:
                lock.release()
            raise
        return lock, early, health

    def _switch(
        self,
        new: DeviceConfig,
        slots: Slots,
        old: _Running,
        lock: DataDirLock | None,
        early: list[KeyedSink],
        health: HealthServer | None,
    ) -> None:
        """Phase two: stop the old streams, start the new ones on the prepared parts. If
        that fails the old config restarts on its own sinks and models."""
        finished = old.stop(SHUTDOWN_BUDGET_S, close_sinks=False)
        pool = list(old.sinks) + early
        built: _Running | None = None
        try:
            running = built = self._build(new, slots, pool)
            for r in running.runners:
                r.start()
        except Exception as exc:  # of any type
            self.reload_failures += 1
            if built is not None:  # built, but a stream would not start: undo it
                built.stop(1.0, close_sinks=False)
                pool.extend(built.sinks)
                close_slots(slots)
            if health is not None:
                health.stop()
            if lock is not None:
                lock.release()
            try:
                running = self._build(self.cfg, old.slots(), pool, own_slots=False)
                for r in running.runners:
                    r.start()
            except Exception as again:
                self._running = None  # run() sees nothing running and exits non-zero
                log.critical("the old config could not be restarted either: %s", describe(again))
                raise ComponentFailedError(
                    f"reload failed ({describe(exc)}) and the old config could not be "
                    f"restarted ({describe(again)})"
                ) from None
            self._running = running
            close_later(pool)  # what the new config had opened
            message = f"reload failed, the old config was restarted: {describe(exc)}"
            log.error("%s", message)
            raise ConfigError(message) from None
        self._running = running
        old_slots = old.slots() if finished else None  # a stuck stream may still use them
        release = None
        if lock is not None:
            old_lock, self._lock = self._lock, lock
            release = old_lock.release if old_lock is not None else None
        close_later(pool, old_slots, release)  # sinks the new config no longer has
        if health is not None or not new.health.enabled:
            if self._health is not None:
                self._health.stop()
            self._health = health
            if health is not None:
                health.start()
        self.cfg = new
        self.reloads += 1
        log.info("config reloaded: %d stream(s)", len(running.runners))

    # -- DeviceControl ---------------------------------------------------------------

    def apply_config(self, text: str) -> None:
        origin = f"{self.config_path} (from the cloud)"
        cfg = resolve_paths(parse_config(text, origin), self.config_path.parent)
        # the file is written first (a config dir that cannot take it fails before
        # anything changes) and put in place only once the new config runs
        try:
            fd, tmp = tempfile.mkstemp(dir=self.config_path.parent, prefix=".config-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise ConfigError(
                f"{self.config_path.parent}: cannot write the new config ({exc.strerror}); "
                "nothing was changed"
            ) from None
        try:
            self.apply(cfg)
            Path(tmp).replace(self.config_path)
        except OSError as exc:
            raise ConfigError(
                f"{self.config_path}: the new config runs but was not saved ({exc.strerror}); "
                "the next start uses the old file"
            ) from None
        finally:
            Path(tmp).unlink(missing_ok=True)

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
            sinks={  # over the process's life, across reloads (counters only grow)
                name: SinkFigures(failures=st.failures, events_lost=st.lost)
                for name, st in self._sink_stats.items()
            },
        )

    # -- health ----------------------------------------------------------------------

    def components(self) -> list[ComponentHealth]:
        """Every component's health: each stream's threads, each sink (and its threads),
        the health listener. What the supervisor polls."""
        out: list[ComponentHealth] = []
        running = self._running
        if running is not None:
            for r in running.runners:
                out.extend(r.health())
            out.extend(running.fanout.health())
        health = self._health
        if health is not None:
            out.extend(health.health())
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        running = self._running
        runners = running.runners if running is not None else []
        up = {r.cfg.name: r.healthy() for r in runners}
        verdict = Verdict(tuple(self.components()))  # now, not as of the last poll
        ok = bool(up) and all(up.values()) and verdict.ok
        # what each detector really runs on (a requested delegate may have fallen back)
        accel: dict[str, dict[str, object]] = {}
        for r in runners:
            for slot in r.slots:
                accel.setdefault(slot.name, {})[r.cfg.name] = slot.accelerator.to_json()
        return ok, {
            "ok": ok,
            "device_id": self.cfg.device_id,
            "streams": up,
            "components": verdict.to_json(),
            "accelerators": accel,
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
        return text + supervisor_metrics(tuple(self.components()), self._sink_stats)


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
    return "\n".join(out) + "\n"
