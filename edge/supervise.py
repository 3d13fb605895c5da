"""Threads whose death is noticed: the one primitive every long-lived thread runs on.

A ``GuardedThread`` runs its target; if the target raises, the exception is logged
with its traceback, counted, and the target runs again after a capped backoff,
at most ``max_restarts`` times within ``window_s``. Past that the thread has
*failed for good*: its ``health()`` says ``fatal`` and the daemon's supervisor
exits non-zero so the service manager restarts the process. A target that must
run for ever (a capture loop, a network loop) and returns while nobody asked it
to stop counts as a death too.

Liveness: a target may call ``beat()`` on each turn of its loop; with
``stall_after_s`` set, a thread that has not beaten for that long is reported as
stalled (unhealthy, not restarted: a stuck C call cannot be interrupted).

Components that own threads expose ``health() -> list[ComponentHealth]``; the
daemon's supervisor (``edge.daemon``) polls them, turns ``/healthz`` red with the
reason, feeds the systemd watchdog only while everything is healthy, and exits
non-zero on a fatal failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge.redact import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One part of the process and whether it is doing its job."""

    name: str
    ok: bool
    reason: str | None = None
    restarts: int = 0
    fatal: bool = False  # cannot recover: the process should exit non-zero
    # red because something outside this process is down (the broker, a camera): health
    # says so, but the process itself is working, so the systemd watchdog is still fed
    # (a restart would not bring the dependency back, and would stop every other stream)
    dependency: bool = False

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {"ok": self.ok, "restarts": self.restarts}
        if self.reason:
            d["reason"] = self.reason
        if self.fatal:
            d["fatal"] = True
        if self.dependency and not self.ok:
            d["dependency"] = True
        return d


class GuardedThread:
    """A daemon thread that restarts its target after a crash, within bounds."""

    def __init__(
        self,
        name: str,
        target: Callable[[], None],
        *,
        stop: threading.Event | None = None,
        forever: bool = True,
        max_restarts: int = 5,
        window_s: float = 300.0,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        stall_after_s: float | None = None,
        on_crash: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self._target = target
        self._stop = stop if stop is not None else threading.Event()
        self._forever = forever
        self._max_restarts = max_restarts
        self._window_s = window_s
        self._backoff = backoff_s
        self._stall_after_s = stall_after_s
        self._on_crash = on_crash
        self._crashes: deque[float] = deque()
        self.restarts = 0
        self.last_error: str | None = None
        self.fatal = False
        self._finished = False
        self._waiting = False  # crashed, in the backoff before its restart
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    # -- the owner's side -----------------------------------------------------------------

    def start(self) -> None:
        self._last_beat = time.monotonic()
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """True if the thread ended within ``timeout``."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def beat(self) -> None:
        """Called by the target on each turn of its loop (liveness)."""
        self._last_beat = time.monotonic()

    def health(self) -> ComponentHealth:
        if self.fatal:
            return ComponentHealth(
                self.name,
                False,
                f"failed {len(self._crashes)} times in {self._window_s:.0f} s, "
                f"not restarted again; last error: {self.last_error}",
                self.restarts,
                fatal=True,
            )
        if self._waiting:  # the thread object lives on, but its work is not being done
            return ComponentHealth(
                self.name, False, f"died, restarting: {self.last_error}", self.restarts
            )
        started = self._thread.ident is not None
        if started and not self._thread.is_alive() and not self._finished:
            return ComponentHealth(self.name, False, "thread is not running", self.restarts)
        if (
            self._stall_after_s is not None
            and self._thread.is_alive()
            and not self._stop.is_set()
            and time.monotonic() - self._last_beat > self._stall_after_s
        ):
            idle = time.monotonic() - self._last_beat
            return ComponentHealth(self.name, False, f"stalled: no progress for {idle:.0f} s",
                                   self.restarts)  # fmt: skip
        return ComponentHealth(self.name, True, self.last_error and f"recovered from: "
                               f"{self.last_error}", self.restarts)  # fmt: skip

    # -- the thread -----------------------------------------------------------------------

    def _main(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                self._target()
            except BaseException as exc:
                if not self._crashed(exc):
                    return
                if not self._backoff_wait(delay):
                    return
                delay = min(delay * 2, self._backoff[1])
                log.warning("%s: restarting (restart #%d)", self.name, self.restarts)
                continue
            if self._forever and not self._stop.is_set():
                if not self._crashed(RuntimeError("returned while it should run until stopped")):
                    return
                if not self._backoff_wait(delay):
                    return
                continue
            self._finished = True
            return

    def _backoff_wait(self, delay: float) -> bool:
        """Wait before a restart (reported unhealthy meanwhile); False if stopped instead."""
        self._waiting = True
        try:
            self._stop.wait(delay)
            if self._stop.is_set():
                self._finished = True
                return False
            self.restarts += 1
            self._last_beat = time.monotonic()
            return True
        finally:
            self._waiting = False

    def _crashed(self, exc: BaseException) -> bool:
        """Record a crash; False when the restart budget is spent (failed for good)."""
        now = time.monotonic()
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > self._window_s:
            self._crashes.popleft()
        self.last_error = redact(f"{type(exc).__name__}: {exc}")  # shown in /healthz
        log.error("%s: thread died: %s", self.name, self.last_error, exc_info=exc)
        if self._on_crash is not None:
            try:
                self._on_crash(self.name, exc)
            except Exception as cb_exc:  # a reporting hook must not hide the crash
                log.error("%s: crash hook failed: %s", self.name, cb_exc)
        if len(self._crashes) > self._max_restarts:
            self.fatal = True
            log.critical(
                "%s: died %d times in %.0f s; giving up (the process will exit non-zero)",
                self.name, len(self._crashes), self._window_s,
            )  # fmt: skip
            return False
        return True
