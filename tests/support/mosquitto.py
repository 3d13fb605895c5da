"""A private mosquitto on a free 127.0.0.1 port, with a temp config; stopped by its PID.

Never touches the machine's own broker on 1883: each ``Broker`` is its own
process, started from ``/usr/sbin/mosquitto`` (or ``$MOSQUITTO``).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edge.demo.broker import free_port, wait_port
from edge.errors import EdgeError
from tests.support import children


def mosquitto_binary() -> str:
    """The mosquitto to run; skips the test where none is installed (fails under CI,
    where .ci/run installs it)."""
    exe = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        msg = "mosquitto is not installed (apt-get install mosquitto; ./dev test does it as root)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


@dataclass
class Broker:
    """One mosquitto process; ``restart()`` keeps the port, config and persistence file."""

    workdir: Path
    port: int
    extra: str = ""
    persistence: bool = False
    host: str = "127.0.0.1"
    raw: str | None = None
    """A complete config to run instead of the generated one (its listener must be ``port``)."""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "broker not started"
        return self.proc.pid

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> Broker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"user {getpass.getuser()}",  # as root it would drop to 'mosquitto' and lose tmp files
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "max_queued_messages 100000",
            self.extra,
        ]
        self.conf.write_text(self.raw if self.raw is not None else "\n".join(lines) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = children.spawn(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            wait_port(self.port, 10.0, self.proc)
        except EdgeError:
            self.stop()
            raise RuntimeError(
                f"mosquitto did not start; see {self.workdir / 'mosquitto.log'}"
            ) from None
        return self

    def _signal(self, sig: int, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        children.stop(self.proc, sig, timeout)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(workdir: Path, extra: str = "", *, persistence: bool = False) -> Broker:
    return Broker(workdir, free_port(), extra=extra, persistence=persistence).start()
