"""Snapshots that arrived before their event: held in memory, bounded, retried.

Events and snapshots travel on different topics, and with several hub workers another
worker may still be writing the event when this one gets its picture. Such a snapshot
waits here (at most ``max_items`` and ``max_bytes``, each for ``max_age_s``); the
writer retries them, and one whose event never shows up is refused as unknown.

This is the index the writer retries from; the messages themselves are also kept in the
database (``snapshots_pending``, ``SnapshotIntake``) before the broker is acknowledged,
so a hub that crashes or restarts loads them again and loses none.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from cloud_sync.hub.snapshots.validate import SnapAccepted


@dataclass(frozen=True, slots=True)
class Waiting:
    snap: SnapAccepted
    since: float


class Pending:
    def __init__(self, max_items: int, max_bytes: int, max_age_s: float) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._items: OrderedDict[tuple[str, str], Waiting] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, snap: SnapAccepted, now: float | None = None) -> bool:
        """Hold it; False when full (the caller refuses it). A resend of one already
        waiting is taken (True) without holding it twice."""
        key = (snap.header.event_id, snap.header.kind)
        if key in self._items:
            return True
        size = len(snap.jpeg)
        if len(self._items) >= self.max_items or self.nbytes + size > self.max_bytes:
            return False
        self._items[key] = Waiting(snap, time.monotonic() if now is None else now)
        self.nbytes += size
        return True

    def drop(self, snap: SnapAccepted) -> None:
        w = self._items.pop((snap.header.event_id, snap.header.kind), None)
        if w is not None:
            self.nbytes -= len(w.snap.jpeg)

    def expired(self, now: float | None = None) -> list[SnapAccepted]:
        t = time.monotonic() if now is None else now
        return [w.snap for w in self._items.values() if t - w.since > self.max_age_s]

    def waiting(self) -> list[SnapAccepted]:
        return [w.snap for w in self._items.values()]
