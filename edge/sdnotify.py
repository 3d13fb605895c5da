"""systemd's notify protocol without a dependency: one datagram to ``$NOTIFY_SOCKET``.

``READY=1`` once the daemon runs (``Type=notify``), ``WATCHDOG=1`` from the
supervisor while every component is healthy (``WatchdogSec=``), ``STOPPING=1`` on
shutdown. Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``); True if it was sent."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # an abstract socket: a leading NUL byte
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify %s to %s failed: %s", message.split("=")[0], addr, exc)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``$WATCHDOG_USEC`` (as systemd advises);
    None when no watchdog is set for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2e6
