"""glibc malloc settings for the long-running daemon (a no-op elsewhere).

Two things keep a Python daemon's resident memory above what it uses:

- **Arenas.** glibc gives each thread that allocates its own arena (up to 8 per
  core), and each keeps the memory its thread freed. The daemon's threads (decode,
  inference, post-processing, sinks) mostly allocate under the GIL anyway, so one
  arena costs no contention worth measuring and saves ~2-3 MB on two streams
  (bench/bench_startup.py). ``MALLOC_ARENA_MAX`` in the environment wins: an
  operator who set it meant it.
- **Start-up garbage.** Validating the config, reading manifests and building the
  runtimes free more than they keep; ``malloc_trim`` hands the free pages at the
  top of the heap and inside it back to the kernel once start-up is done.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys

M_ARENA_MAX = -8  # <malloc.h>
log = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, looked up once; None off Linux or on a libc without mallopt/malloc_trim."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - musl has no mallopt: then there is nothing to tune
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = 1) -> bool:
    """At most ``count`` malloc arenas from now on; call before starting threads.

    True when set; False off glibc or when ``MALLOC_ARENA_MAX`` is in the environment."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_ARENA_MAX, count))
    log.debug("malloc: arenas limited to %d: %s", count, ok)
    return ok


def trim() -> bool:
    """Return free heap pages to the kernel; True when glibc released any."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
