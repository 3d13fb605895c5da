"""What the cloud (or a local operator) may ask of a running daemon.

The daemon implements ``DeviceControl``; ``cloud_sync.commands`` calls it for
``…/cmd/<name>`` messages. Each method either fully applies or raises
``EdgeError`` with the reason and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from edge.stats import DeviceStats


class DeviceControl(Protocol):
    def apply_config(self, text: str) -> None:
        """Validate a complete device config (TOML text), apply it like SIGHUP and persist it."""
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
