"""Per-device token buckets on payload bytes: one device's flood cannot starve the rest.

Checked in the MQTT thread before anything is parsed, so refusing costs almost
nothing; refused messages are counted as ``rate_limited`` and show as gaps.
"""

from __future__ import annotations

import time


class DeviceRateLimit:
    def __init__(self, bytes_per_s: float, burst_bytes: float, max_devices: int = 100_000) -> None:
        if bytes_per_s <= 0 or burst_bytes <= 0:
            raise ValueError("bytes_per_s and burst_bytes must be > 0")
        self.rate = bytes_per_s
        self.burst = burst_bytes
        self.max_devices = max_devices
        self._buckets: dict[str, tuple[float, float]] = {}  # device → (tokens, at)

    def allow(self, device: str, size: int, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(device, (self.burst, t))
        tokens = min(self.burst, tokens + (t - at) * self.rate)
        ok = tokens >= size
        if ok:
            tokens -= size
        if len(self._buckets) >= self.max_devices and device not in self._buckets:
            self._buckets = {d: b for d, b in self._buckets.items() if b[0] < self.burst}
        self._buckets[device] = (tokens, t)
        return ok
