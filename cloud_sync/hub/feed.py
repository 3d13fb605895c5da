"""The live feed behind ``/api/stream``: one poller per process, a ring, many clients.

The poller reads events by insertion number ``n``, so it sees what every worker
stores. On PostgreSQL numbers are taken before commit: a number skipped at one
poll may commit a moment later (or never: a duplicate burns one), so the poller
re-asks for skipped numbers for ``settle_s`` seconds. SQLite commits in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from cloud_sync.hub.db import Store

log = logging.getLogger("edge_hub.feed")


@dataclass(frozen=True, slots=True)
class Entry:
    k: int  # this process's own running number
    n: int
    event: dict[str, Any]
    data: str


class Feed:
    def __init__(
        self, store: Store, poll_s: float = 0.05, settle_s: float = 0.0, ring: int = 10_000
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.settle_s = settle_s
        self.ring: deque[Entry] = deque(maxlen=ring)
        self.next_k = 0
        self.max_n = 0
        self._holes: dict[int, float] = {}  # skipped n → when first skipped
        self._changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                self.max_n = await run_in_threadpool(self.store.last_n)
                break
            except Exception as e:  # the database is not up yet: the API says so meanwhile
                log.warning("feed start: %s; retrying", e)
                await asyncio.sleep(1.0)
        while True:
            try:
                await self.poll_once()
            except Exception as e:  # the database may be restarting: keep polling
                log.warning("feed poll failed: %s", e)
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.poll_s)

    async def poll_once(self) -> int:
        rows, scanned = await run_in_threadpool(self.store.events_after, self.max_n, 2000)
        now = time.monotonic()
        if self.settle_s > 0 and self._holes:
            for n in [n for n, t in self._holes.items() if now - t > self.settle_s]:
                del self._holes[n]
            if self._holes:
                rows = await run_in_threadpool(self.store.events_in, sorted(self._holes)) + rows
        added = 0
        for r in rows:
            n = r["n"]
            self._holes.pop(n, None)
            if n > self.max_n:
                if self.settle_s > 0:
                    for h in range(self.max_n + 1, min(n, self.max_n + 1001)):
                        self._holes[h] = now
                self.max_n = n
            try:
                data = json.dumps(r, separators=(",", ":"), allow_nan=False)
            except ValueError:  # not JSON (the store renders finite values; belt and braces)
                continue
            self.ring.append(Entry(self.next_k, n, r, data))
            self.next_k += 1
            added += 1
        # rows the store could not render still move the feed on: it never stops on one
        self.max_n = max(self.max_n, scanned)
        if added:
            self._changed.set()
            self._changed = asyncio.Event()
        return added

    async def wait(self, timeout: float) -> None:
        ev = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)

    def since_k(self, k: int) -> list[Entry]:
        if not self.ring or self.ring[-1].k < k:
            return []
        first = self.ring[0].k
        return list(self.ring)[max(k - first, 0) :]
