"""What ``edge demo`` checks and clears before it starts anything.

A second demo on the same folder or ports used to start anyway and break the first
(its hub on the first's database, its daemon's outbox beside the first's, its dashboard
port taken by the first's hub, so it silently fell back to another). Now the demo takes
the workdir's data-folder lock (``edge.lock``, held for its whole run and released by
the kernel even on SIGKILL) and checks every port it was told to use before any
process starts; either failure is one line naming the folder or port and what to do.

State: the demo shows the same thing every run, so the hub's database, its snapshots
and the daemon's data dir (outbox, seq mark) are deleted at start unless ``--keep``.
The workdir lock is held while they are deleted, so no other demo is using them.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from edge import exit_codes
from edge.errors import EdgeError
from edge.lock import LOCK_NAME, DataDirBusyError, DataDirLock


class DemoBusyError(EdgeError):
    """Another demo (or another server) holds the folder or a port this demo needs."""

    exit_code = exit_codes.REFUSED


HUB_DB = "hub.db"
DEVICE_DIR = "device"
# everything a run leaves that the next would show again: SQLite's side files, the hub's
# snapshot JPEGs (<db file>.snapshots/, its default), the daemon's outbox and seq mark
STATE = (HUB_DB, f"{HUB_DB}-wal", f"{HUB_DB}-shm", f"{HUB_DB}-journal", f"{HUB_DB}.snapshots")


def lock_workdir(work: Path) -> DataDirLock:
    """Take ``work``'s lock or raise ``DemoBusyError`` naming it and the holder's PID."""
    lock = DataDirLock(work)
    try:
        lock.acquire()
    except DataDirBusyError:
        holder = _holder(work / LOCK_NAME)
        who = f"another edge demo (PID {holder})" if holder else "another edge demo"
        raise DemoBusyError(
            f"{work}: in use by {who}; stop it (Ctrl-C there) or pass --workdir DIR"
        ) from None
    return lock


def _holder(path: Path) -> int | None:
    try:
        text = path.read_text("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_device_free(work: Path) -> None:
    """Raise ``DemoBusyError`` if a daemon still holds the demo's device data dir: one left
    running by a demo that was killed (its children run in their own sessions)."""
    lock = DataDirLock(work / DEVICE_DIR)
    try:
        lock.acquire()
    except DataDirBusyError:
        holder = _holder(work / DEVICE_DIR / LOCK_NAME)
        pid = f" (PID {holder})" if holder else ""
        raise DemoBusyError(
            f"{work / DEVICE_DIR}: a daemon{pid} from an earlier demo still runs; "
            "stop it (kill PID), or pass --workdir DIR"
        ) from None
    lock.release()


def port_taken(port: int) -> bool:
    """Whether a server could not listen on 127.0.0.1:``port`` now (something listens or
    holds it bound). ``SO_REUSEADDR`` as servers set it, so a port in TIME_WAIT after the
    last demo stopped counts as free, as it is for them."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[str, int]) -> None:
    """Raise ``DemoBusyError`` for the first of ``ports`` (flag -> port) already taken."""
    for flag, port in ports.items():
        if not 0 < port < 65536:
            raise DemoBusyError(f"{flag} {port}: not a TCP port; give one in 1..65535")
        if port_taken(port):
            raise DemoBusyError(
                f"127.0.0.1:{port} is in use (another edge demo or server); stop it, "
                f"or pass {flag} with a free port ({flag} 0 picks one)"
            )


def reset_state(work: Path) -> None:
    """Delete what the last run left (hub database and snapshots, the device's data dir)."""
    for name in (*STATE, DEVICE_DIR):
        path = work / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise EdgeError(
                f"{path}: cannot delete the last run's state ({exc.strerror}); "
                "delete it yourself, or pass --keep to keep it"
            ) from None
