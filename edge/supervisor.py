"""The daemon's supervisor: one look at every component's health, on each turn of the
daemon's main loop.

Every long-lived thread runs as an ``edge.supervise.GuardedThread`` inside some
component (a stream's capture/infer/post, the MQTT sink's network, send and command
threads, the health listener), and every component reports ``health() ->
list[ComponentHealth]``. The supervisor gathers them, logs each change (a component
going down, coming back), feeds the systemd watchdog only while every component is
healthy or red only because a dependency outside the process is down (a wedged or
failing daemon is then restarted by systemd; a broker outage or an unplugged camera is
shown in /healthz but restarts nothing, since a restart would not bring it back), and tells the
daemon when one has failed for good (``fatal``): the daemon then shuts down what it
can and ``edge run`` exits 4, so ``Restart=on-failure`` restarts the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge import exit_codes, sdnotify
from edge.errors import EdgeError
from edge.supervise import ComponentHealth

log = logging.getLogger(__name__)

# without $WATCHDOG_USEC (not under a systemd watchdog) nothing is sent
HealthSource = Callable[[], list[ComponentHealth]]


class ComponentFailedError(EdgeError):
    """A part of the daemon failed for good (or nothing is left running): exit non-zero
    so the service manager restarts the process."""

    exit_code = exit_codes.COMPONENT_FAILED


class IncompleteRunError(EdgeError):
    """Every source ended, but a pipeline thread crashed on the way (it was restarted and
    the item it held was dropped): the run finished without some of its events, so it
    does not exit 0."""

    exit_code = exit_codes.FAILED


@dataclass(frozen=True, slots=True)
class Verdict:
    components: tuple[ComponentHealth, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.components)

    @property
    def alive(self) -> bool:
        """The process is doing its job as far as it can: every component is ok, or red
        only because a dependency outside the process is down. Feeds the watchdog."""
        return all(c.ok or (c.dependency and not c.fatal) for c in self.components)

    @property
    def fatal(self) -> list[ComponentHealth]:
        return [c for c in self.components if c.fatal]

    def to_json(self) -> dict[str, dict[str, object]]:
        return {c.name: c.to_json() for c in self.components}


class Supervisor:
    def __init__(self, source: HealthSource, *, clock: Callable[[], float] = time.monotonic):
        self._source = source
        self._clock = clock
        self._interval = sdnotify.watchdog_interval_s()
        self._last_ping = float("-inf")
        self._down: dict[str, str] = {}
        self.verdict = Verdict(())
        self.watchdog_pings = 0

    def ready(self) -> None:
        sdnotify.notify("READY=1")

    def stopping(self) -> None:
        sdnotify.notify("STOPPING=1")

    def poll(self) -> Verdict:
        """Gather every component's health, log what changed, feed the watchdog if alive."""
        try:
            comps = tuple(self._source())
        except Exception as exc:  # a broken probe must not hide as "healthy"
            log.exception("supervisor: reading health failed")
            comps = (ComponentHealth("supervisor", False, f"reading health failed: {exc!r}"),)
        self._log_changes(comps)
        self.verdict = Verdict(comps)
        now = self._clock()
        if (
            self._interval is not None
            and self.verdict.alive
            and now - self._last_ping >= self._interval
            and sdnotify.notify("WATCHDOG=1")
        ):
            self._last_ping = now
            self.watchdog_pings += 1
        return self.verdict

    def _log_changes(self, comps: tuple[ComponentHealth, ...]) -> None:
        now_down = {c.name: c.reason or "not ok" for c in comps if not c.ok}
        for name, reason in now_down.items():
            if name not in self._down:  # transitions only: reasons carry growing counts
                log.warning("component %s is down: %s", name, reason)
        for name in self._down.keys() - now_down.keys():
            log.info("component %s is healthy again", name)
        self._down = now_down
