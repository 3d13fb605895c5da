"""What the cloud (or a local operator) may ask of a running daemon.

The daemon implements ``DeviceControl``; ``cloud_sync.commands`` calls it for
``…/cmd/<name>`` messages. Each method either fully applies or raises
``EdgeError`` with the reason and changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edge.stats import DeviceStats

# a reply sender: True once the reply is handed to a connected client, False while offline
ReplySender = Callable[[str, bytes], bool]
REPLY_WAIT_S = 15.0


class DeviceControl(Protocol):
    def apply_config(self, text: str) -> None:
        """Validate a complete device config (TOML text), apply it like SIGHUP and persist it.

        Only the keys ``edge.config.remote.REMOTE_KEYS`` lists may differ from the config
        file (anything else: ``RemoteConfigRefusedError``, nothing applied or written).
        Transactional: on any failure the running config is untouched and the raised
        ``EdgeError`` names the cause (the command's reply carries it)."""
        ...

    def swap_model(self, detector: str, bundle: Path) -> dict[str, Any]:
        """Load the bundle beside the running model, swap atomically, roll back on failure."""
        ...

    def snapshot(self, stream: str | None, max_bytes: int) -> bytes:
        """The current frame of ``stream`` (default: the first video stream) as JPEG ≤ max_bytes."""
        ...

    def stats(self) -> DeviceStats:
        """Per-stream, per-detector and per-sink figures for telemetry (``edge.stats``)."""
        ...


class ReplyRoute:
    """Where command replies go: the one MQTT connection that is live now.

    A ``config`` command that changes ``[sync]`` replaces the MQTT sink it arrived
    on; its reply must go out through the new sink, not the old one whose connection
    the reload closed. Each MQTT sink attaches its sender when it starts and detaches
    it when it closes; ``send`` waits (bounded) for a sender that is connected.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sender: ReplySender | None = None

    def attach(self, sender: ReplySender) -> None:
        with self._cond:
            self._sender = sender
            self._cond.notify_all()

    def detach(self, sender: ReplySender) -> None:
        with self._cond:
            if self._sender == sender:  # bound methods compare by function and instance
                self._sender = None

    def send(self, name: str, payload: bytes, timeout_s: float = REPLY_WAIT_S) -> bool:
        """Hand the reply to the live sender, waiting up to ``timeout_s`` for one that is
        connected (a reload's new connection takes a moment); False if none was."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                sender = self._sender
            if sender is not None and sender(name, payload):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._cond:
                self._cond.wait(min(0.05, left))
