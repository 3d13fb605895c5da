"""Generations of the pipeline and how the daemon builds one from a config.

A generation (``Generation``) is the streams one config built and the sinks they emit
to; ``DaemonBase`` holds the daemon's state and builds generations, taking sinks that
did not change from the previous one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.config import DeviceConfig, SinkConfig, load_config
from edge.control import DeviceControl, ReplyRoute
from edge.daemon.ota import OtaBook
from edge.errors import EdgeError
from edge.events import Event, EventSink, uuid7
from edge.health import HealthServer
from edge.lock import DataDirLock
from edge.pipeline import DetectorSlot, StreamRunner, load_slot
from edge.profiles import Profile, get_profile
from edge.sinks import DaemonContext, SinkFanout, SinkStats, build_sink, sink_names
from edge.snapshots.encoder import SnapshotCounters, SnapshotEncoder

log = logging.getLogger("edge.daemon")  # one logger for the package, as before the split

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


class Generation:
    """One generation of the pipeline: what a config built. On reload the streams are
    rebuilt; sinks whose config did not change (the MQTT outbox and connection above
    all) carry over to the next generation."""

    def __init__(
        self,
        runners: list[StreamRunner],
        fanout: SinkFanout,
        sinks: list[KeyedSink],
        encoder: SnapshotEncoder | None = None,
    ) -> None:
        self.runners = runners
        self.fanout = fanout
        self.sinks = sinks
        self.encoder = encoder  # None: snapshots off, or no sink takes them

    def start(self) -> None:
        if self.encoder is not None:
            self.encoder.start()
        for r in self.runners:
            r.start()

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
        if self.encoder is not None:  # the ended tracks' best pictures, before sinks close
            self.encoder.close(max(0.5, deadline - time.monotonic()))
        self.fanout.flush()
        if close_sinks:
            self.fanout.close()
        return finished


class DaemonBase:
    """The daemon's state, and building a generation from a config."""

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
        self._running: Generation | None = None
        self._health: HealthServer | None = None
        self._lock: DataDirLock | None = None
        self._replies = ReplyRoute()
        self._sink_stats: dict[str, SinkStats] = {}
        self._snapshot_counters = SnapshotCounters()  # across reloads, like sink stats
        self.reloads = 0
        self.reload_failures = 0
        self._ota = OtaBook(config_path)  # the OTA record beside the config

    def _context(self, cfg: DeviceConfig) -> DaemonContext:
        return DaemonContext(
            cfg.device_id, self.boot_id, cfg, cfg.data_dir, self._device_control(), self._replies
        )

    def _device_control(self) -> DeviceControl:
        """What the cloud's commands act on: the daemon itself (``edge.daemon.control``)."""
        raise NotImplementedError

    @staticmethod
    def _profile(cfg: DeviceConfig) -> Profile | None:
        return get_profile(cfg.profile) if cfg.profile else None

    def _load_slots(self, cfg: DeviceConfig) -> Slots:
        """Each stream's detectors, one instance per stream (interpreters are not shared).
        A detector with an accepted over-the-air update runs its bundle (``edge.daemon.ota``);
        one that fails to load falls back to the config's model."""
        slots: Slots = {}
        profile = self._profile(cfg)
        ota = self._ota.bundles(cfg)
        try:
            for s in cfg.streams:
                slots[s.name] = []
                for name in s.detectors:
                    dcfg, threshold = cfg.detectors[name], s.thresholds.get(name)
                    slot: DetectorSlot | None = None
                    if name in ota:
                        ota_cfg = dcfg.model_copy(update={"model": str(ota[name])})
                        try:
                            slot = load_slot(name, ota_cfg, threshold, cfg.models_home, profile)
                        except Exception as exc:  # of any kind: the config's model runs
                            self._ota.reject(name, describe(exc))
                            del ota[name]
                    if slot is None:
                        slot = load_slot(name, dcfg, threshold, cfg.models_home, profile)
                    slots[s.name].append(slot)
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
    ) -> Generation:
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
                    follow = getattr(keyed[-1][1], "reconfigure", None)
                    if follow is not None:  # a kept sink that follows the streams (the
                        follow(cfg)  # mqtt sink's Home Assistant entities)
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

            encoder = self._encoder(cfg, fanout)
            for s in cfg.streams:
                runners.append(
                    StreamRunner(s, slots[s.name], cfg.tracking, emit, snapshots=encoder)
                )
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
        return Generation(runners, fanout, keyed, encoder)

    def _encoder(self, cfg: DeviceConfig, fanout: SinkFanout) -> SnapshotEncoder | None:
        """The generation's snapshot encoder (not started): only when snapshots are on, a
        sink takes them, some kind is asked for and some stream is video; otherwise they
        cost nothing (no thread, no frame held)."""
        if not (cfg.snapshots.enabled and cfg.snapshots.kinds and fanout.takes_snapshots):
            return None
        if all(s.is_audio for s in cfg.streams):
            return None
        return SnapshotEncoder(cfg.snapshots, fanout.emit_snapshot, self._snapshot_counters)

    def _emit(self, events: list[Event], fanout: SinkFanout) -> None:
        """Events of one generation go to that generation's sinks (ends arrive while stopping)."""
        with self._emit_lock:
            self.events_total += len(events)
            if self.first_event_s is None:
                self.first_event_s = time.monotonic() - self.t_start
                log.info("first event %.3f s after start", self.first_event_s)
            fanout.emit_many(events)
