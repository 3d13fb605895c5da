"""The writer's side of snapshots: check, match to the event, store, count.

Runs in the hub's writer thread, after the events of the same write are committed (so
a snapshot sent right behind its event finds it). Every refusal is counted by reason
(``HubMetrics.snapshots_rejected``) and logged (rate-limited); nothing here raises into
the writer. A store that fails (disk full, folder not writable) turns the
``snapshots`` health component red until a store succeeds again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cloud_sync.hub.db import Store
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.snapshots.pending import Pending
from cloud_sync.hub.snapshots.storage import SnapshotStore
from cloud_sync.hub.snapshots.validate import SnapAccepted, SnapReason, check
from edge.supervise import ComponentHealth

log = logging.getLogger("edge_hub.snapshots")

LOAD_LIMIT = 100_000
"""Rows read back at start; the wait's own bounds (``pending_items``) keep far fewer."""


@dataclass(frozen=True)
class SnapshotConfig:
    dir: Path | None = None
    """Files here; None: JPEGs in the database (``storage.default_dir`` picks)."""
    max_age_days: float | None = 30.0
    max_bytes: int | None = 2 * 1024**3
    pending_s: float = 30.0
    pending_items: int = 256
    pending_bytes: int = 32 * 1024 * 1024
    retry_s: float = 0.5
    sweep_s: float = 60.0
    orphan_sweep_s: float = 6 * 3600.0
    """How often the files a crash left unindexed are looked for (and at the start)."""


class SnapshotIntake:
    def __init__(self, cfg: SnapshotConfig, store: Store, metrics: HubMetrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.store = SnapshotStore(store, cfg.dir)
        self.pending = Pending(cfg.pending_items, cfg.pending_bytes, cfg.pending_s)
        self._failing: str | None = None
        self._last_retry = 0.0
        self._last_sweep = 0.0
        self._last_orphans: float | None = None
        self._unkept = 0  # waiting snapshots the database could not keep (memory only)
        # those of them still waiting, by (event id, kind), and the last failure's reason
        self._volatile: set[tuple[str, str]] = set()
        self._unkept_why = ""
        self._load()

    # -- what waits is kept in the database too ----------------------------------------

    def _load(self) -> None:
        """The snapshots that waited when the hub last stopped or crashed: checked again
        (a damaged row is refused and deleted), their wait going on from when they came."""
        try:
            rows = self.store.store.pending_all(LOAD_LIMIT)
        except Exception as e:
            log.error("the snapshots kept waiting could not be read: %s: %s",
                      type(e).__name__, e)  # fmt: skip
            return
        mono, wall = time.monotonic(), time.time()
        for event_id, kind, device, payload, received_at in rows:
            m = check(device, payload)
            if not isinstance(m, SnapAccepted):
                self._reject(m.reason, f"kept while waiting: {m.detail}", device)
                self._unkeep(event_id, kind)
                continue
            since = mono - min(max(0.0, wall - received_at), 10 * 365 * 86400.0)
            if not self.pending.add(m, now=since):
                self._reject("pending_full", f"event {event_id}: more wait than fits", device)
                self._unkeep(event_id, kind)
        if rows:
            log.info("%d snapshot(s) waiting for their event since before the start",
                     len(self.pending))  # fmt: skip
        self._gauge()

    def _keep(self, device: str, payload: bytes, m: SnapAccepted) -> None:
        """Before the broker is acknowledged: a crash after the ack must not lose it."""
        try:
            self.store.store.pending_put(
                m.header.event_id, m.header.kind, device, payload, time.time()
            )
        except Exception as e:  # the database is down: it waits in memory only
            self._unkept_why = f"{type(e).__name__}: {str(e).strip()[:200]}"
            self._volatile.add((m.header.event_id, m.header.kind))
            self._unkept += 1
            if self._unkept <= 10 or self._unkept % 1000 == 0:
                log.warning("snapshot %s/%s waits in memory only (%d so far): %s: %s",
                            m.header.event_id, m.header.kind, self._unkept,
                            type(e).__name__, e)  # fmt: skip

    def _unkeep(self, event_id: str, kind: str) -> None:
        try:
            self.store.store.pending_delete(event_id, kind)
        except Exception as e:  # left there: the next start checks it again
            log.warning("a waiting snapshot's row stays for now: %s: %s", type(e).__name__, e)

    def _drop(self, s: SnapAccepted) -> None:
        self.pending.drop(s)
        self._volatile.discard((s.header.event_id, s.header.kind))
        self._unkeep(s.header.event_id, s.header.kind)

    def health(self) -> ComponentHealth:
        """Red while snapshots cannot be stored, or while a snapshot that waits for its
        event could not be kept in the database (a crash now would lose it)."""
        if self._failing is not None:
            return ComponentHealth(
                "snapshots", False, f"storing in {self.store.where}: {self._failing}"
            )
        if self._volatile:
            return ComponentHealth(
                "snapshots", False,
                f"{len(self._volatile)} waiting snapshot(s) in memory only: {self._unkept_why}",
            )  # fmt: skip
        return ComponentHealth("snapshots", True)

    def _reject(self, reason: SnapReason, detail: str, where: str) -> None:
        with self.metrics.lock:
            self.metrics.snapshots_rejected[reason] += 1
            n = self.metrics.snapshots_rejected[reason]
        if n <= 10 or n % 1000 == 0:
            log.warning("snapshot rejected (%s, %d so far) from %s: %s", reason, n, where, detail)

    def refuse_too_large(self, topic: str, size: int) -> None:
        """Called from the MQTT thread for a message too big to be a snapshot."""
        self._reject("too_large", f"{size} bytes", topic)

    def handle(self, topic_device: str, payload: bytes) -> None:
        """One message from ``<prefix>/<topic_device>/snapshots``."""
        try:
            m = check(topic_device, payload)
        except Exception as e:  # a bug in a check must not kill the writer
            self._reject("not_snapshot", f"check failed: {type(e).__name__}: {e}", topic_device)
            return
        if not isinstance(m, SnapAccepted):
            self._reject(m.reason, m.detail, topic_device)
            return
        if not self._try(m):
            before = len(self.pending)
            if not self.pending.add(m):
                self._reject(
                    "pending_full",
                    f"event {m.header.event_id} unknown and {before} snapshots wait",
                    topic_device,
                )
            else:
                new = len(self.pending) > before
                if new:
                    self._keep(topic_device, payload, m)
                with self.metrics.lock:
                    if new:
                        self.metrics.snapshots_waited += 1
                    else:  # a resend of one that waits already
                        self.metrics.snapshots_duplicate += 1
        self._gauge()

    def _try(self, m: SnapAccepted) -> bool:
        """Store ``m`` if its event is known: True when done with it (stored, duplicate or
        refused), False to keep it waiting (event not there yet, or the database down)."""
        h = m.header
        try:
            ref = self.store.store.event_ref(h.event_id)
            if ref is None:
                return False
            if ref.device_id != h.device_id:
                self._reject(
                    "event_device_mismatch",
                    f"event {h.event_id} belongs to {ref.device_id!r}", h.device_id,
                )  # fmt: skip
                return True
            got = self.store.put(h, m.jpeg, ref)
        except Exception as e:
            why = f"{type(e).__name__}: {str(e).strip()[:200]}"
            if self.store.store.is_transient(e):
                self._failing = why
                return False  # retried while it may wait
            self._failing = why
            self._reject("store_failed", why, h.device_id)
            return True
        self._failing = None
        with self.metrics.lock:
            if got == "stored":
                self.metrics.snapshots_stored += 1
            else:
                self.metrics.snapshots_duplicate += 1
        return True

    def tick(self, now: float | None = None) -> None:
        """Called by the writer loop: retry what waits, refuse what waited too long, and
        run retention now and then."""
        t = time.monotonic() if now is None else now
        if len(self.pending) and t - self._last_retry >= self.cfg.retry_s:
            self.retry(t)
        if t - self._last_sweep >= self.cfg.sweep_s:
            self._last_sweep = t
            self.sweep()

    def retry(self, now: float | None = None) -> None:
        self._last_retry = time.monotonic() if now is None else now
        expired = {id(s) for s in self.pending.expired(now)}
        for s in self.pending.waiting():
            if self._try(s):
                self._drop(s)
            elif id(s) in expired:
                self._drop(s)
                if self._failing is not None:  # the database, not the event, kept it waiting
                    self._reject("store_failed", self._failing, s.header.device_id)
                    continue
                self._reject(
                    "unknown_event",
                    f"event {s.header.event_id} did not arrive within {self.cfg.pending_s:g} s",
                    s.header.device_id,
                )
        self._gauge()

    def sweep(self) -> None:
        age = None if self.cfg.max_age_days is None else self.cfg.max_age_days * 86400
        try:
            by_age, by_size = self.store.sweep(age, self.cfg.max_bytes)
        except Exception as e:  # best effort; the next round retries
            log.error("snapshot retention failed: %s: %s", type(e).__name__, e)
            return
        if by_age or by_size:
            log.info("snapshot retention: deleted %d for age, %d for size", by_age, by_size)
        orphans = 0
        t = time.monotonic()
        if self._last_orphans is None or t - self._last_orphans >= self.cfg.orphan_sweep_s:
            self._last_orphans = t
            try:
                orphans = self.store.sweep_orphans()
            except Exception as e:  # best effort, as above
                log.error("snapshot orphan sweep failed: %s: %s", type(e).__name__, e)
        with self.metrics.lock:
            self.metrics.snapshots_deleted["age"] += by_age
            self.metrics.snapshots_deleted["size"] += by_size
            self.metrics.snapshots_deleted["orphan"] += orphans

    def _gauge(self) -> None:
        with self.metrics.lock:
            self.metrics.snapshots_pending = len(self.pending)
            self.metrics.snapshots_pending_bytes = self.pending.nbytes
