"""A test sink registered at the boundary: the ``stdout`` entry of ``edge.sinks.SINKS``
points here (a config's ``type = "stdout"`` sink builds it). It owns a worker thread,
as the MQTT sink does. Once the file named by ``$CRASH_SINK_TRIGGER``
exists its worker dies on every run (``RuntimeError``), which the daemon must notice,
count, show in /healthz and, past the restart budget, exit non-zero for.

Import it before the CLI: ``python -c "import tests.support.crash_sink; ..."``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from edge.config import SinkConfig
from edge.events import Event, EventSink
from edge.sinks import SINKS, DaemonContext
from edge.supervise import ComponentHealth, GuardedThread

MAX_RESTARTS = 2
BACKOFF_S = 1.0


class CrashySink:
    def __init__(self, trigger: Path) -> None:
        self._trigger = trigger
        self._stop = threading.Event()
        self.events = 0
        self._worker = GuardedThread(
            "crashy.worker",
            self._work,
            stop=self._stop,
            max_restarts=MAX_RESTARTS,
            window_s=300,
            backoff_s=(BACKOFF_S, BACKOFF_S),
        )
        self._worker.start()

    def _work(self) -> None:
        while True:  # once triggered, a restarted worker dies at once, as a lost device would
            if self._trigger.exists():
                raise RuntimeError("crashy worker lost its device")
            self._worker.beat()
            if self._stop.wait(0.05):
                return

    def emit(self, event: Event) -> None:
        self.events += 1

    def emit_many(self, events: Sequence[Event]) -> int:
        self.events += len(events)
        return len(events)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        self._worker.join(2)

    def health(self) -> list[ComponentHealth]:
        return [self._worker.health()]


def _crashy(cfg: SinkConfig, ctx: DaemonContext) -> EventSink:
    return CrashySink(Path(os.environ["CRASH_SINK_TRIGGER"]))


SINKS["stdout"] = "tests.support.crash_sink:_crashy"
