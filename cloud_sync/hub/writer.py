"""The hub's database writer: drains the ingest queue in batches into the store.

After a batch's events are committed (or quarantined) the writer acknowledges the
messages to the broker (manual PUBACK: a hub crash loses nothing it was handed) and
publishes ``HubAckV1`` on ``<prefix>/<device>/ack``; the device deletes its outbox rows
only then. A message that cannot be stored (refused by validation, or refused by the
database) goes to the quarantine table and is acknowledged: it never blocks the
messages behind it. A failure of the database itself (connection lost, locked, disk
full) is retried with backoff instead, and health is red while it lasts.

``Writer`` is mixed into ``cloud_sync.hub.ingest.Ingest``, which owns the state it uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from cloud_sync.hub.bounded import BoundedQueue
from cloud_sync.hub.db import Store
from cloud_sync.hub.db.quarantine import QuarantineItem
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.snapshots.intake import SnapshotIntake
from cloud_sync.hub.validate import Accepted, Rejected, Reply, decode, salvage_batch
from cloud_sync.schema import (
    MAX_BATCH_EVENTS,
    EventBatchV1,
    EventV1,
    HubAckV1,
    StatusV1,
    TelemetryV1,
    parse_topic,
    topic,
)
from edge.compat import UTC
from edge.supervise import GuardedThread

if TYPE_CHECKING:
    from cloud_sync.hub.ingest import IngestConfig

log = logging.getLogger("edge_hub.ingest")


@dataclass(frozen=True, slots=True)
class Item:
    mid: int
    qos: int
    topic: str
    payload: bytes  # at most QUARANTINE_PAYLOAD_MAX bytes when ``size`` is over the cap
    size: int  # bytes received
    too_large: bool = False
    # when it arrived (monotonic): made in the MQTT thread on receipt; for the ingest latency
    received: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class _Got:
    """One accepted message and where it came from (for the fallback and the quarantine)."""

    item: Item
    msg: Accepted


class _StoppingError(Exception):
    """The hub is stopping while a write waits for the database: leave it unacknowledged."""


def seq_ranges(seqs: Sequence[int]) -> list[list[int]]:
    """Sorted, merged, inclusive ``[first, last]`` ranges."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] + 1 == s:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


class Writer:
    """The writer thread's loop and what it calls; ``Ingest`` sets these attributes."""

    cfg: IngestConfig
    store: Store
    metrics: HubMetrics
    on_stored: Callable[[], None] | None
    queue: BoundedQueue[Item]
    _stop: threading.Event
    _writer: GuardedThread
    _client: mqtt.Client | None
    _db_error: str | None
    _db_error_since: float
    _last_prune: float
    snapshots: SnapshotIntake

    def _ack(self, mid: int, qos: int) -> None:
        if qos > 0 and self._client is not None:
            self._client.ack(mid, qos)

    def _reject(self, r: Rejected) -> None:
        with self.metrics.lock:
            self.metrics.rejected[r.reason] += 1
            n = self.metrics.rejected[r.reason]
        if n <= 10 or n % 1000 == 0:
            log.warning("rejected (%s, %d so far) on %s: %s", r.reason, n, r.topic, r.detail)

    def _write_loop(self) -> None:
        while not self._stop.is_set() or len(self.queue):
            self._writer.beat()
            items = self.queue.get_many(self.cfg.write_batch, wait=0.2, linger=0.005)
            if items:
                try:
                    self._write(items)
                except _StoppingError:
                    return  # unacknowledged: the broker redelivers them to the next session
            self.snapshots.tick()
            self._maybe_prune()

    def _retry(self, fn: Callable[[], Any]) -> Any:
        """Run a database call; a failure of the database itself is retried with backoff
        (health red meanwhile), a failure caused by the data is raised to the caller."""
        delay = 0.2
        while True:
            try:
                out = fn()
            except Exception as e:
                if not self.store.is_transient(e):
                    raise
                with self.metrics.lock:
                    self.metrics.write_errors += 1
                if self._db_error is None:
                    self._db_error_since = time.monotonic()
                self._db_error = f"{type(e).__name__}: {str(e).strip()[:200]}"
                log.error("database write failed (%s); retrying in %.1f s", self._db_error, delay)
                if self._stop.wait(delay):
                    raise _StoppingError from None
                self._writer.beat()
                delay = min(delay * 2, self.cfg.db_retry_max_s)
                continue
            if self._db_error is not None:
                log.info("database writes work again (after %.1f s)",
                         time.monotonic() - self._db_error_since)  # fmt: skip
                self._db_error = None
            return out

    def _quarantine(self, items: list[QuarantineItem]) -> None:
        if not items:
            return
        try:
            self._retry(lambda: self.store.quarantine(items))
        except _StoppingError:
            raise
        except Exception as e:  # the last resort failed: say so loudly, never block on it
            with self.metrics.lock:
                self.metrics.quarantine_failed += len(items)
            log.error("could not quarantine %d message(s) (%s): %s", len(items),
                      ", ".join(sorted({q.reason for q in items})), e)  # fmt: skip
            return
        with self.metrics.lock:
            for q in items:
                self.metrics.quarantined[q.reason] += 1

    def _write(self, items: list[Item]) -> None:
        got: list[_Got] = []
        quarantine: list[QuarantineItem] = []
        acked: dict[str, list[int]] = {}  # device → seqs quarantined (hub-acked too)
        kinds: dict[str, int] = {}
        snaps: list[tuple[str, bytes]] = []  # stored after this write's events
        for it in items:
            parsed = parse_topic(self.cfg.prefix, it.topic)
            dev = parsed[0] if parsed else None
            if parsed is not None and parsed[1] == "snapshots":
                snaps.append((parsed[0], it.payload))
                kinds["snapshots"] = kinds.get("snapshots", 0) + 1
                continue
            if it.too_large:
                r = Rejected("too_large", it.topic, f"{it.size} bytes > {self.cfg.max_payload}")
                self._reject(r)
                quarantine.append(QuarantineItem(r.reason, r.detail, it.topic, it.payload, dev))
                continue
            try:
                m = decode(self.cfg.prefix, it.topic, it.payload, self.cfg.max_payload)
            except Exception as e:  # a decoder bug must not kill the writer: keep the message
                m = Rejected("bad_schema", it.topic, f"decoder failed: {type(e).__name__}: {e}")
            if isinstance(m, Rejected):
                self._reject(m)
                salvaged = salvage_batch(self.cfg.prefix, it.topic, it.payload)
                if salvaged is None or dev is None:
                    quarantine.append(QuarantineItem(m.reason, m.detail, it.topic, it.payload, dev))
                    continue
                for b in salvaged.bad:
                    quarantine.append(QuarantineItem(m.reason, b.detail, it.topic, b.raw, dev))
                    if b.seq is not None:
                        acked.setdefault(dev, []).append(b.seq)
                if salvaged.good is None:
                    continue
                m = salvaged.good
            got.append(_Got(it, m))
            k = (
                "events" if isinstance(m, EventBatchV1)
                else "status" if isinstance(m, StatusV1)
                else "telemetry" if isinstance(m, TelemetryV1)
                else "reply"
            )  # fmt: skip
            kinds[k] = kinds.get(k, 0) + 1
        t0 = time.perf_counter()
        try:
            stored, dups = self._retry(lambda: self._store(got))
        except _StoppingError:
            raise
        except Exception as e:  # something in this write cannot be stored: one at a time
            log.warning("write of %d message(s) failed (%s: %s); storing one by one",
                        len(got), type(e).__name__, e)  # fmt: skip
            stored, dups = self._store_each(got, quarantine, acked)
        self._quarantine(quarantine)
        for device, payload in snaps:
            self.snapshots.handle(device, payload)
        with self.metrics.lock:
            self.metrics.wrote(time.perf_counter() - t0)
            done = time.monotonic()
            for it in items:
                self.metrics.ingest_time.observe(done - it.received)
            self.metrics.events_stored += stored
            self.metrics.events_duplicate += dups
            self.metrics.received.update(kinds)
        for it in items:
            self._ack(it.mid, it.qos)
        for g in got:
            if isinstance(g.msg, EventBatchV1):
                acked.setdefault(g.msg.device_id, []).extend(e.seq for e in g.msg.events)
        self._hub_ack(acked)
        if stored and self.on_stored is not None:
            self.on_stored()

    def _store(self, got: Sequence[_Got]) -> tuple[int, int]:
        batches = [g.msg for g in got if isinstance(g.msg, EventBatchV1)]
        statuses = [g.msg for g in got if isinstance(g.msg, StatusV1)]
        telemetry = [g.msg for g in got if isinstance(g.msg, TelemetryV1)]
        replies = [g.msg for g in got if isinstance(g.msg, Reply)]
        if not (batches or statuses or telemetry or replies):
            return 0, 0
        res = self.store.write(batches, statuses, telemetry, replies)
        return res.stored, res.duplicates

    def _store_each(
        self, got: list[_Got], quarantine: list[QuarantineItem], acked: dict[str, list[int]]
    ) -> tuple[int, int]:
        """The fallback: each message alone, each event of a failing batch alone; what
        the database refuses is quarantined (its seqs still acknowledged to the device)."""
        stored = dups = 0
        keep: list[_Got] = []
        for g in got:
            try:
                s, d = self._retry(lambda g=g: self._store([g]))  # type: ignore[misc]
                stored, dups = stored + s, dups + d
                keep.append(g)
                continue
            except _StoppingError:
                raise
            except Exception as exc:
                err = f"database refused it: {type(exc).__name__}: {str(exc)[:200]}"
            dev = parse_topic(self.cfg.prefix, g.item.topic)
            device = dev[0] if dev else None
            if not isinstance(g.msg, EventBatchV1) or len(g.msg.events) == 1:
                quarantine.append(QuarantineItem("store_failed", err, g.item.topic,
                                                 g.item.payload, device))  # fmt: skip
                if isinstance(g.msg, EventBatchV1):
                    acked.setdefault(g.msg.device_id, []).append(g.msg.events[0].seq)
                continue
            good: list[EventV1] = []
            for ev in g.msg.events:
                one = _Got(g.item, EventBatchV1(device_id=g.msg.device_id,
                                                boot_id=g.msg.boot_id, events=[ev]))  # fmt: skip
                try:
                    s, d = self._retry(lambda one=one: self._store([one]))  # type: ignore[misc]
                    stored, dups = stored + s, dups + d
                    good.append(ev)
                except _StoppingError:
                    raise
                except Exception as ex:
                    why = f"database refused it: {type(ex).__name__}: {str(ex)[:200]}"
                    raw = ev.model_dump_json().encode()
                    quarantine.append(
                        QuarantineItem("store_failed", why, g.item.topic, raw, device)
                    )
                    acked.setdefault(g.msg.device_id, []).append(ev.seq)
            if good:
                b = EventBatchV1(device_id=g.msg.device_id, boot_id=g.msg.boot_id, events=good)
                keep.append(_Got(g.item, b))
        got[:] = keep
        return stored, dups

    def _hub_ack(self, acked: dict[str, list[int]]) -> None:
        """HubAckV1 per device, after the commit. Not waited for: a lost ack makes the
        device resend, and the hub dedups and acknowledges again."""
        c = self._client
        if c is None or not acked:
            return
        for dev, seqs in sorted(acked.items()):
            ranges = seq_ranges(seqs)
            for i in range(0, len(ranges), MAX_BATCH_EVENTS):
                try:
                    ack = HubAckV1(device_id=dev, ranges=ranges[i : i + MAX_BATCH_EVENTS])
                    info = c.publish(topic(self.cfg.prefix, dev, "ack"),
                                     ack.model_dump_json().encode(), qos=1)  # fmt: skip
                except ValueError as e:  # not a device id a topic can carry: nothing to ack
                    log.warning("no hub ack for %r: %s", dev, e)
                    continue
                with self.metrics.lock:
                    if info.rc == mqtt.MQTT_ERR_SUCCESS:
                        self.metrics.hub_acks += 1
                    else:
                        self.metrics.hub_ack_failures += 1

    def _maybe_prune(self) -> None:
        days = self.cfg.retention_days
        now = time.monotonic()
        if days is None or now - self._last_prune < 600:
            return
        self._last_prune = now
        cutoff = datetime.now(UTC).timestamp() - days * 86400
        try:
            n = self.store.prune(cutoff)
        except Exception as e:  # best effort; the next round retries
            log.error("retention prune failed: %s", e)
            return
        if n:
            log.info("retention: deleted %d events older than %g days", n, days)
