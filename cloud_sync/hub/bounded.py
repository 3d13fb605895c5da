"""A FIFO bounded by item count and by bytes; ``put`` blocks while it is full.

Between the MQTT thread and the database writer: when the writer falls behind,
the MQTT thread stops reading, the broker holds the rest (QoS 1, receive
maximum), and the hub's memory stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("max_items and max_bytes must be >= 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self.high_water_items = 0
        self.high_water_bytes = 0
        self.blocked_s = 0.0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, item: T, size: int, timeout: float | None = None) -> bool:
        """Add ``item``; an item alone always fits. False when ``timeout`` ran out."""
        with self._cond:
            t0 = time.monotonic()
            while self._items and (
                len(self._items) >= self.max_items or self._bytes + size > self.max_bytes
            ):
                left = None if timeout is None else timeout - (time.monotonic() - t0)
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self.blocked_s += time.monotonic() - t0
            self._items.append((item, size))
            self._bytes += size
            self.high_water_items = max(self.high_water_items, len(self._items))
            self.high_water_bytes = max(self.high_water_bytes, self._bytes)
            self._cond.notify_all()
            return True

    def get_many(self, max_items: int, wait: float, linger: float = 0.0) -> list[T]:
        """Up to ``max_items``; waits ``wait`` s for the first, then ``linger`` s for more."""
        out: list[T] = []
        with self._cond:
            deadline = time.monotonic() + wait
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return out
                self._cond.wait(left)
            if linger > 0 and len(self._items) < max_items:
                self._cond.wait_for(lambda: len(self._items) >= max_items, linger)
            while self._items and len(out) < max_items:
                item, size = self._items.popleft()
                self._bytes -= size
                out.append(item)
            self._cond.notify_all()
        return out
