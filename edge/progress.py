"""Progress of long work (model pulls, tool-environment builds, conversions), on stderr.

Lines go to the ``edge.progress`` logger, which ``configure`` gives its own stderr
handler (``edge: downloading …``): never stdout, so ``--json`` output stays one
document. ``-q`` turns them off. A byte count is reported at most every
``_EVERY_S`` (more often on a terminal) and once at the end, so a log file gets a
few lines per download rather than thousands.
"""

from __future__ import annotations

import logging
import sys
import time

from edge.units import format_size

log = logging.getLogger("edge.progress")
_EVERY_S = 5.0
_EVERY_TTY_S = 0.5


def configure(prog: str, *, quiet: bool) -> None:
    """Progress lines as ``prog: …`` on stderr, unless ``quiet``."""
    for h in list(log.handlers):
        log.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def enabled() -> bool:
    """Whether progress is shown: bars of our own libraries (tqdm) follow it too."""
    return log.isEnabledFor(logging.INFO)


def step(message: str) -> None:
    """One line: a stage begins (``calibrating on 40 images``)."""
    log.info("%s", message)


class ByteProgress:
    """``label: 1.2 MiB of 11.3 MiB (10 %)`` as bytes arrive, then ``label: 11.3 MiB, done``."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._last = time.monotonic()
        try:
            tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            tty = False
        self._every = _EVERY_TTY_S if tty else _EVERY_S

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total:
            self.total = total
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        if self.total:
            pct = 100 * self.done // self.total
            step(f"{self.label}: {format_size(self.done)} of {format_size(self.total)} ({pct} %)")
        else:
            step(f"{self.label}: {format_size(self.done)}")

    def finish(self) -> None:
        step(f"{self.label}: {format_size(self.done)}, done")
