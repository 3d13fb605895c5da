"""Pinning a stream's threads to CPUs (``[streams.cpus]``; Linux only).

Checked when the stream is built, against the CPUs this process may use (a container's
``--cpuset-cpus`` or a systemd ``CPUAffinity=`` narrows them), so a CPU that is not
there is a config error naming the field rather than a thread that dies at start.
Each thread pins itself first thing (``sched_setaffinity(0, ...)`` sets the calling
thread's mask on Linux), and again after a restart. The CPUs can still go away after the
check (a cpuset narrowed at run time, a CPU taken offline): then the thread says so in the
log and runs where the OS puts it. Pinning is for speed; a stream must not stop over it.
"""

from __future__ import annotations

import logging
import os

from edge.config.streams import StreamCpus
from edge.errors import ConfigError

log = logging.getLogger(__name__)


def allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on; None where the OS cannot pin threads."""
    get = getattr(os, "sched_getaffinity", None)
    if get is None or not hasattr(os, "sched_setaffinity"):
        return None
    return set(get(0))


def check(stream: str, cpus: StreamCpus | None) -> dict[str, set[int]]:
    """Each part's CPUs, or ``ConfigError`` when one cannot be honoured here."""
    parts = cpus.parts() if cpus is not None else {}
    if not parts:
        return {}
    allowed = allowed_cpus()
    if allowed is None:
        raise ConfigError(
            f"streams.{stream}.cpus: pinning threads to CPUs needs Linux; remove [streams.cpus]"
        )
    for part, wanted in parts.items():
        missing = sorted(wanted - allowed)
        if missing:
            raise ConfigError(
                f"streams.{stream}.cpus.{part}: CPU {missing[0]} is not one this process may "
                f"use ({', '.join(map(str, sorted(allowed)))}); choose among those"
            )
    return parts


def pin(cpus: set[int] | None, where: str = "thread") -> bool:
    """Pin the calling thread (no-op for None); False, logged, when the OS refuses."""
    if not cpus:
        return False
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        log.warning(
            "%s: cannot pin to CPU(s) %s (%s); running unpinned",
            where, ", ".join(map(str, sorted(cpus))), exc.strerror or exc,
        )  # fmt: skip
        return False
    return True
