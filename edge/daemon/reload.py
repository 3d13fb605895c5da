"""The transactional reload: a new config is built and checked beside the running one.

Phase one (``_prepare``) opens, beside the running generation, what can be: the new
data dir (and its lock), the sinks that may be open twice, the new listener. Phase two
(``_switch``) stops the old streams and starts the new ones on those parts; if that
fails, the old config restarts on its own sinks and models. Any failure, of any kind,
leaves the old config running (or ``run`` exits non-zero when even that failed).
"""

from __future__ import annotations

import logging
import tempfile
from typing import NoReturn

from edge.config import DeviceConfig, load_config
from edge.daemon.generation import (
    SHUTDOWN_BUDGET_S,
    Generation,
    KeyedSink,
    Slots,
    close_later,
    close_slots,
    describe,
    exclusive_resource,
    sink_key,
)
from edge.daemon.report import Reporting
from edge.errors import ConfigError
from edge.health import HealthServer
from edge.lock import DataDirLock
from edge.sinks import build_sink
from edge.supervisor import ComponentFailedError

log = logging.getLogger("edge.daemon")  # one logger for the package, as before the split


class Reloading(Reporting):
    """``reload`` and ``apply``: swap the running generation for a new config's."""

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
        self, new: DeviceConfig, old: Generation
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
        old: Generation,
        lock: DataDirLock | None,
        early: list[KeyedSink],
        health: HealthServer | None,
    ) -> None:
        """Phase two: stop the old streams, start the new ones on the prepared parts. If
        that fails the old config restarts on its own sinks and models."""
        finished = old.stop(SHUTDOWN_BUDGET_S, close_sinks=False)
        pool = list(old.sinks) + early
        built: Generation | None = None
        try:
            running = built = self._build(new, slots, pool)
            running.start()
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
                running.start()
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
        # before the new generation is visible: whoever sees the config's model running
        # (health, telemetry, a `status` reply) also sees the OTA record without the
        # entries that model replaced
        self._ota.commit(new)  # entries whose model the owner changed: dropped (counters stay)
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
