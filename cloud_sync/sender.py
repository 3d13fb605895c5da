"""The publisher's sender thread: outbox rows to QoS 1 batches, PUBACKs and hub acks back
to the outbox, overdue resends, snapshots once no event waits, queued command replies and
telemetry.

A mixin of ``cloud_sync.publisher.Publisher`` (the state it reads is declared below);
it runs on its own ``GuardedThread``, the network thread owns the connection.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from cloud_sync.outbox import Outbox, Row, batch_payload
from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.schema import topic
from edge.config import SyncConfig
from edge.supervise import GuardedThread

log = logging.getLogger(__name__)

SNAPSHOT_INFLIGHT = 2
"""Snapshots unacknowledged at once: a small window, so a 500 KiB picture on a slow uplink
never holds more than two in the broker's way of a new event."""


@dataclass(slots=True)
class SnapFlight:
    id: int  # the store's row id
    sent: float  # monotonic


@dataclass(slots=True)
class Flight:
    first: int
    last: int
    sent: float  # monotonic
    created: float  # epoch seconds the first row entered the outbox
    resend: bool = False  # an overdue resend (already stamped delivered)


@dataclass(frozen=True, slots=True)
class Link:
    gen: int
    client: mqtt.Client


class SenderLoop:
    cfg: SyncConfig
    device_id: str
    outbox: Outbox
    hub_delivery: bool
    acked_events: int
    hub_acks: int
    resent_events: int
    published_batches: int
    on_ack: Callable[[list[Flight]], None] | None
    _link: Link | None
    _lock: threading.Lock
    _send: GuardedThread
    _stopping: threading.Event
    _wake: threading.Event
    _wake_at: float
    _reconnect_now: threading.Event
    _hub_online: threading.Event
    _acks: queue.SimpleQueue[tuple[int, int, bool]]
    _hub_acks: queue.SimpleQueue[list[tuple[int, int]]]
    _replies: OrderedDict[int, tuple[str, bytes]]
    _events_topic: str
    _snapshots_topic: str
    snapshots: SnapshotStore | None
    published_snapshots: int
    _telemetry: Callable[[], bytes | None] | None

    def _send_main(self) -> None:
        inflight: dict[int, Flight] = {}
        replies: dict[int, int] = {}  # mid -> reply id, on the current connection
        snaps: dict[int, SnapFlight] = {}  # mid -> snapshot in flight, on this connection
        cursor = -1
        snap_cursor = -1
        gen_seen = 0
        next_telemetry = time.monotonic()
        next_overdue = time.monotonic()
        linger = self.cfg.batch_max_ms / 1000.0
        while not self._stopping.is_set():
            self._send.beat()
            now = time.monotonic()
            self._wake.wait(min(0.25, max(0.0, self._wake_at - now)) if self._wake_at else 0.25)
            self._wake.clear()
            self._wake_at = 0.0
            link = self._link
            gen = link.gen if link else 0
            if gen != gen_seen:  # a new connection (or none): replay from the oldest row
                inflight.clear()
                replies.clear()
                snaps.clear()  # not PUBACK'd: sent again from the store on this connection
                cursor = -1
                snap_cursor = -1
                gen_seen = gen
                if link is not None and self.hub_delivery:
                    # hub acks sent while we were away are lost with the clean session
                    self.outbox.requeue_recent(time.time() - self.cfg.hub_ack_timeout_s)
            # read the hub's announcement BEFORE settling: every PUBACK that arrived ahead of
            # it is then stamped delivered first, and so requeued below
            hub_back = self._hub_online.is_set()
            self._hub_online.clear()
            self._settle(inflight, replies, gen, snaps)
            if hub_back and link is not None and self.hub_delivery:
                n = self.outbox.requeue_recent(0.0)
                cursor = -1
                if n:
                    log.info(
                        "mqtt: a hub (re)subscribed; sending again %d event(s) the broker took "
                        "but no hub has acknowledged", n,
                    )  # fmt: skip
                    self.resent_events += n
            if link is None:
                continue
            now = time.monotonic()
            sent = [f.sent for f in inflight.values()] + [f.sent for f in snaps.values()]
            if sent and now - min(sent) > self.cfg.puback_timeout_s:
                log.warning(
                    "mqtt: no PUBACK within %.1f s; reconnecting and resending from the outbox",
                    self.cfg.puback_timeout_s,
                )
                self._reconnect_now.set()
                continue
            self._send_replies(link, replies)
            if self.hub_delivery and now >= next_overdue:
                next_overdue = now + max(0.2, min(5.0, self.cfg.hub_ack_timeout_s / 4))
                self._resend_overdue(link, inflight)
            cursor = self._fill(link, inflight, cursor, linger)
            if not inflight:  # every event sent is PUBACK'd: the broker has it first
                snap_cursor = self._fill_snapshots(link, snaps, cursor, snap_cursor)
            if self._telemetry is not None and now >= next_telemetry:
                next_telemetry = now + self.cfg.telemetry_interval_s
                payload = self._telemetry()
                if payload is not None:
                    link.client.publish(
                        topic(self.cfg.prefix, self.device_id, "telemetry"), payload, 0
                    )
        self._settle(inflight, replies, gen_seen, snaps)

    def _send_replies(self, link: Link, replies: dict[int, int]) -> None:
        with self._lock:
            pending = [(i, t, p) for i, (t, p) in self._replies.items()]
        sent = set(replies.values())
        for rid, topic_, payload in pending:
            if rid in sent:
                continue
            info = link.client.publish(topic_, payload, 1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            replies[info.mid] = rid

    def _settle(
        self,
        inflight: dict[int, Flight],
        replies: dict[int, int],
        gen: int,
        snaps: dict[int, SnapFlight],
    ) -> None:
        done: list[Flight] = []
        snaps_done: list[int] = []
        snaps_refused: list[int] = []
        while True:
            try:
                g, mid, ok = self._acks.get_nowait()
            except queue.Empty:
                break
            if g != gen:
                continue  # from a connection already gone
            if mid in replies:
                with self._lock:
                    self._replies.pop(replies.pop(mid), None)
                continue
            if mid in snaps:
                (snaps_done if ok else snaps_refused).append(snaps.pop(mid).id)
                continue
            if mid not in inflight:
                continue  # a status PUBACK
            if not ok:
                log.error(
                    "mqtt: broker refused the batch (mid %d); check the ACL for this device", mid
                )
                continue  # stays in flight: the PUBACK timeout reconnects and resends
            done.append(inflight.pop(mid))
        if self.snapshots is not None and (snaps_done or snaps_refused):
            self.snapshots.delete(snaps_done)
            if snaps_refused:
                # resending would loop for ever (a PUBACK timeout reconnects): an ACL without
                # the snapshots topic must cost the pictures, never the events behind them
                log.error("mqtt: the broker refused %d snapshot(s) on %s; dropped (counted as "
                          "refused): allow the topic in the broker's ACL",
                          len(snaps_refused), self._snapshots_topic)  # fmt: skip
                self.snapshots.delete(snaps_refused, refused=True)
        if done:
            ranges = [(f.first, f.last) for f in done if not f.resend]
            if self.hub_delivery:
                self.outbox.mark_delivered(ranges)
            else:
                self.acked_events += self.outbox.ack(ranges)
            if self.on_ack is not None:
                self.on_ack(done)
        while True:
            try:
                got = self._hub_acks.get_nowait()
            except queue.Empty:
                break
            self.hub_acks += 1
            self.acked_events += self.outbox.ack(got)

    def _resend_overdue(self, link: Link, inflight: dict[int, Flight]) -> None:
        free = self.cfg.inflight - len(inflight)
        if free <= 0:
            return
        rows = self.outbox.take_overdue(
            self.cfg.hub_ack_timeout_s, free * self.cfg.batch_max_events
        )
        if not rows:
            return
        log.warning(
            "mqtt: %d event(s) from seq %d were PUBACK'd but not acknowledged by the hub "
            "within %.0f s; sending them again", len(rows), rows[0].seq,
            self.cfg.hub_ack_timeout_s,
        )  # fmt: skip
        self.resent_events += len(rows)
        run: list[Row] = []
        for r in rows:  # contiguous runs of one boot each: a batch's range holds only its rows
            if run and (r.seq != run[-1].seq + 1 or r.boot_id != run[-1].boot_id
                        or len(run) >= self.cfg.batch_max_events):  # fmt: skip
                if not self._publish(link, inflight, run, resend=True):
                    return
                run = []
            run.append(r)
        if run:
            self._publish(link, inflight, run, resend=True)

    def _fill(self, link: Link, inflight: dict[int, Flight], cursor: int, linger: float) -> int:
        n_max = self.cfg.batch_max_events
        while len(inflight) < self.cfg.inflight:
            rows = self.outbox.read(cursor, n_max)
            if not rows:
                break
            boot = rows[0].boot_id
            same = [r for r in rows if r.boot_id == boot]
            split = len(same) < len(rows)
            if len(same) < n_max and not split and inflight:
                age = time.time() - same[0].created
                if age < linger:
                    self._wake_at = time.monotonic() + linger - age
                    break
            if not self._publish(link, inflight, same):
                break
            cursor = same[-1].seq
        return cursor

    def _fill_snapshots(
        self, link: Link, snaps: dict[int, SnapFlight], cursor: int, snap_cursor: int
    ) -> int:
        """Publish stored snapshots while no event waits to be sent (rows after ``cursor``)
        or for its PUBACK (the caller checks), at most ``SNAPSHOT_INFLIGHT`` at once.

        Waiting for the events' PUBACK too (the brief said "nothing unsent"): the broker
        then holds an event before its snapshot is even sent, so a hub reading one
        subscription gets the event first and does not refuse the picture as one of an
        unknown event (a refused snapshot is gone: it was deleted on its PUBACK)."""
        store = self.snapshots
        free = SNAPSHOT_INFLIGHT - len(snaps)
        if store is None or free <= 0 or not store.pending() or self.outbox.read(cursor, 1):
            return snap_cursor
        for snap in store.read(snap_cursor, free):
            info = link.client.publish(self._snapshots_topic, snap.message, 1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            snaps[info.mid] = SnapFlight(snap.id, time.monotonic())
            self.published_snapshots += 1
            snap_cursor = snap.id
        return snap_cursor

    def _publish(
        self, link: Link, inflight: dict[int, Flight], rows: list[Row], resend: bool = False
    ) -> bool:
        payload = batch_payload(self.device_id, rows[0].boot_id, rows)
        info = link.client.publish(self._events_topic, payload, 1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        inflight[info.mid] = Flight(
            rows[0].seq, rows[-1].seq, time.monotonic(), rows[0].created, resend
        )
        self.published_batches += 1
        return True
