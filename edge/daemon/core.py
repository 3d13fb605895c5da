"""``Daemon``: start, serve, stop; the supervisor's verdict decides how ``run`` ends.

SIGTERM/SIGINT stop capture, drain the queues, end open events, flush the sinks and
exit 0 within 5 s; SIGHUP reloads the config (``edge.daemon.reload``).
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from pathlib import Path
from types import FrameType

from edge import gc_pause, malloc
from edge.config import DeviceConfig
from edge.daemon.control import Control
from edge.daemon.generation import SHUTDOWN_BUDGET_S
from edge.daemon.ota import models_dir, sweep
from edge.errors import InputError
from edge.lock import DataDirLock
from edge.supervisor import ComponentFailedError, IncompleteRunError, Supervisor

log = logging.getLogger("edge.daemon")  # one logger for the package, as before the split

# seconds after start (or a reload) at which the start-up's garbage is collected: late
# enough that the streams' first frames are not held up by it (a full collection holds
# the GIL ~15 ms here), early enough that the memory is back before anyone looks
SETTLE_AFTER_S = 1.0


def settle() -> None:
    """Once the daemon runs: collect the start-up's garbage (config validation, manifests,
    the runtimes' set-up), freeze what is left (the schemas, models and modules live as
    long as the process: later full collections no longer walk them, so no stream stalls
    for them), and hand the freed heap back to the OS (``edge.malloc``). After a reload,
    what the last call froze is thawed first, so that the old generation's garbage goes.
    The automatic collector, paused for the start-up, runs again from here."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc_pause.resume()  # `edge run` started with the collector paused (edge.gc_pause)
    malloc.trim()


class Daemon(Control):
    """``edge run``: one config's streams, detectors, sinks and health listener; reloads
    transactionally and implements ``edge.control.DeviceControl`` for the cloud."""

    def __init__(self, config_path: Path, cfg: DeviceConfig | None = None) -> None:
        super().__init__(config_path, cfg)
        self.supervisor = Supervisor(self.components)
        self._settle_at = 0.0  # when to run settle(); 0: not due

    def start(self) -> None:
        # one daemon per data dir, decided before any sink opens anything in it
        lock = DataDirLock(self.cfg.data_dir)
        lock.acquire()
        self._lock = lock
        for line in sweep(models_dir(self.cfg)):  # a crash mid model command: tidied
            log.warning("models: %s", line)
        try:
            running = self._build(self.cfg, self._load_slots(self.cfg))
            with self._state_lock:
                self._running = running
            self._ota.commit(self.cfg)  # entries whose model the owner changed: dropped
            running.start()
            self._health = self._health_server(self.cfg)
            if self._health is not None:
                self._health.start()
        except BaseException:
            self.shutdown()
            raise
        self.supervisor.ready()
        self.supervisor.poll()
        self._settle_at = time.monotonic() + SETTLE_AFTER_S
        log.info(
            "running device %s: %d stream(s), %d detector(s), boot %s",
            self.cfg.device_id, len(running.runners), len(self.cfg.detectors), self.boot_id,
        )  # fmt: skip

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
        is left running, ``InputError`` (exit 2) when the sources ended with an error,
        ``IncompleteRunError`` (exit 1) when they ended but a pipeline thread crashed on the
        way (the items it held were dropped)."""
        self.start()
        try:
            while not self._stop.wait(0.1):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                    self._settle_at = time.monotonic() + SETTLE_AFTER_S
                if self._settle_at and time.monotonic() >= self._settle_at:
                    self._settle_at = 0.0
                    settle()
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
            crashes = {k: n for r in running.runners for k, n in r.crashes().items()}
        log.info("every source ended; stopping")
        if errors:
            raise InputError(errors[0])
        if crashes:
            which = ", ".join(f"{k} {n} time(s)" for k, n in sorted(crashes.items()))
            raise IncompleteRunError(
                f"every source ended, but pipeline threads crashed on the way ({which}; "
                "restarted, the item each held dropped): events of those frames may be "
                "missing; see the log for the traceback"
            )
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
