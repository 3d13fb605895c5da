"""The cyclic garbage collector is off while the ``edge`` program starts.

Starting allocates a few hundred thousand objects that live as long as the process
(modules, pydantic's schemas, the models' sessions); each automatic collection during
start-up walks them again, and so would every full collection after it. So the program's
entry (``edge.cli.entry``) pauses the collector before the CLI is imported, and the end
of the start-up freezes what was made and resumes it: before the handler for most
commands; ``edge detect`` and ``edge bench`` once the model is loaded; ``edge run`` when
the daemon settles, 1 s after it started (``edge.daemon.core.settle``, which collects
first). ``edge detect``'s cold start went from 173 to 149 ms here (docs/benchmarks.md).
Pausing alone saved nothing: the first collections after it walked all the start-up had
made, hence the freeze. Garbage cycles of the start-up are frozen with it (the daemon
collects them first): a fixed amount, not a leak that grows.

Only a pause of ours is resumed: a program that embeds edgewise with the collector off
keeps it off.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The start-up's objects frozen (``gc.freeze``: never walked again), then the collector
    on. Without the freeze the first collections after it would walk every object the
    start-up made, and cost what the pause saved. Idempotent; a no-op unless ``pause``
    turned the collector off."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def paused() -> bool:
    return _paused
