"""What every source delivers (``Frame``) and the reconnect policy of live sources."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Audio = npt.NDArray[np.float32]


@dataclass(slots=True)
class Frame:
    """One video frame or audio chunk. ``ts``: capture time (epoch s); ``t_read``: monotonic."""

    index: int
    ts: float
    t_read: float
    image: Image | None = None
    audio: Audio | None = None
    offset_s: float = 0.0  # audio: position of the chunk's first sample in the stream


class Source(Protocol):
    live: bool
    reconnects: int

    def read(self) -> Frame | None:
        """The next frame; ``None`` when a file source ended or the source was stopped."""
        ...

    def close(self) -> None: ...


class Backoff:
    """Capped exponential backoff with jitter: delay k is uniform in [0.5, 1] × min·2^k, ≤ max."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311  backoff jitter, not a secret

    def next_delay(self) -> float:
        base = min(self.max_s, self.min_s * (2.0**self.attempt))
        self.attempt += 1
        return base * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


def wait(stop: threading.Event, seconds: float) -> bool:
    """Sleep unless stopped; True when stopped."""
    return stop.wait(max(0.0, seconds))
