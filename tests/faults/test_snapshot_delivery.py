"""Snapshots delivered like events (issue 13, "Delivering it"): committed before they are
published, deleted on PUBACK, resent after a broker outage or a ``kill -9``, bounded by
size without ever costing an event, and a full disk or a damaged file costing only pictures.

Real mosquitto on a free port (``tests.support.mosquitto``), stopped by its PID."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.outbox import Outbox
from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.schema import decode_snapshot
from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from edge.config.sync import SNAPSHOT_MIN_BYTES
from edge.events import uuid7
from edge.snapshots import SnapshotSink
from edge.wire import SnapshotKind
from tests.support.mosquitto import Broker, free_port, start_broker
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events
from tests.support.snapshot_data import snapshot
from tests.support.tcp_proxy import TcpProxy
from tests.support.tmpfs import fill, tmpfs

REPO = Path(__file__).resolve().parents[2]


def cfg(port: int, **kw: Any) -> SyncConfig:
    base: dict[str, Any] = {"port": port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
                            "connect_timeout_s": 2.0, "telemetry_interval_s": 0.2}  # fmt: skip
    return SyncConfig.model_validate({**base, **kw})


def received(sub: Subscriber) -> list[bytes]:
    with sub.lock:
        return [p for t, p in sub.raw if t.endswith("/snapshots")]


def wait_snapshots(sub: Subscriber, want: set[str], timeout: float) -> dict[str, bytes]:
    """event id -> the message, once every id in ``want`` arrived (else what did)."""
    deadline = time.monotonic() + timeout
    got: dict[str, bytes] = {}
    while time.monotonic() < deadline:
        got = {decode_snapshot(m)[0].event_id: m for m in received(sub)}
        if want <= set(got):
            break
        time.sleep(0.05)
    return got


def wait_empty(store: SnapshotStore, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while store.stats().queued and time.monotonic() < deadline:
        time.sleep(0.05)
    return store.stats().queued == 0


def test_snapshots_arrive_byte_exact_after_the_events_and_are_deleted_on_puback(
    tmp_path: Path,
) -> None:
    """Their event ids are in no event (the pipeline never committed one): they are sent all
    the same; the hub refuses an unknown event id itself, and counts it."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)
    try:
        with MqttSink(cfg(b.port), "cam1", tmp_path / "data") as sink:
            assert isinstance(sink, SnapshotSink)  # what the pipeline's fanout looks for
            assert sink.publisher.connected.wait(10)
            kinds: list[SnapshotKind] = ["start", "start_crop", "best", "best_crop"]
            shots = [snapshot(kind=k, seed=i) for i, k in enumerate(kinds)]
            events = make_events(300)
            sink.emit_many(events)  # a backlog of events first ...
            for s in shots:
                sink.emit_snapshot(s)  # ... then the pictures: they wait for the events
            got = wait_snapshots(sub, {s.event_id for s in shots}, 10)
            assert sub.wait_seqs(list(range(300)), 10)
            assert wait_empty(sink.snapshots, 5)  # deleted on PUBACK
            for s in shots:
                header, body = decode_snapshot(got[s.event_id])
                assert body == s.jpeg and header.kind == s.kind and header.device_id == "cam1"
            with sub.lock:
                order = [t.rsplit("/", 1)[-1] for t, _ in sub.raw]
            last_event = max(i for i, k in enumerate(order) if k == "events")
            assert order.index("snapshots") > last_event  # events went first
            assert len(received(sub)) == 4  # each once
            st = sink.snapshots.stats()
            assert (st.sent, st.queued, st.dropped, st.lost) == (4, 0, 0, 0)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with sub.lock:
                    t = sub.telemetry[-1] if sub.telemetry else None
                if t is not None and t.snapshots is not None and t.snapshots.sent == 4:
                    break
                time.sleep(0.05)
            assert t is not None and t.snapshots is not None and t.snapshots.sent == 4
            assert {h.name: h.ok for h in sink.health()}["sync-snapshots"]
    finally:
        sub.close()
        b.stop()


def test_a_backlog_of_events_goes_out_before_any_snapshot(tmp_path: Path) -> None:
    """Events and snapshots committed while the broker is away; with a small events window
    the events need many rounds, and no snapshot goes out before the last event batch."""
    port = free_port()
    b = Broker(tmp_path / "broker", port, persistence=True).start()
    sub = Subscriber(port, persistent=True, ack=True)
    b.stop()
    try:
        with MqttSink(cfg(port, inflight=2, batch_max_events=10), "cam1", tmp_path / "d") as sink:
            shots = []
            for i in range(4):
                sink.emit_many(make_events(100))
                shots.append(snapshot(seed=i))
                sink.emit_snapshot(shots[-1])
            b.start()
            assert sub.wait_seqs(list(range(400)), 20)
            got = wait_snapshots(sub, {s.event_id for s in shots}, 10)
            assert len(got) == 4
        with sub.lock:
            order = [t.rsplit("/", 1)[-1] for t, _ in sub.raw]
        last_event = max(i for i, k in enumerate(order) if k == "events")
        assert order.index("snapshots") > last_event, "a snapshot went out before an event"
    finally:
        sub.close()
        b.stop()


def test_a_snapshot_waits_for_its_events_puback(tmp_path: Path) -> None:
    """An event batch on the wire without its PUBACK yet (the link stalls): the snapshot
    stays home until the broker has the event, so the hub never sees it first."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)
    proxy = TcpProxy("127.0.0.1", b.port)
    try:
        with MqttSink(cfg(proxy.port), "cam1", tmp_path / "data") as sink:
            assert sink.publisher.connected.wait(10)
            proxy.stall()
            sink.emit_many(make_events(1))
            deadline = time.monotonic() + 5
            while sink.publisher.published_batches < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            s = snapshot()
            sink.emit_snapshot(s)
            time.sleep(0.5)
            assert sink.publisher.published_snapshots == 0  # the event is not PUBACK'd yet
            proxy.resume()
            assert s.event_id in wait_snapshots(sub, {s.event_id}, 10)
            assert sub.wait_seqs([0], 5)
        with sub.lock:
            order = [t.rsplit("/", 1)[-1] for t, _ in sub.raw]
        assert order.index("events") < order.index("snapshots")
    finally:
        proxy.close()
        sub.close()
        b.stop()


def test_snapshots_not_pubacked_when_the_link_dies_are_sent_on_the_next_connection(
    tmp_path: Path,
) -> None:
    """The link stalls with two snapshots on the wire (no PUBACK), then is cut: the new
    connection sends them again from the store."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port)
    proxy = TcpProxy("127.0.0.1", b.port)
    try:
        with MqttSink(cfg(proxy.port), "cam1", tmp_path / "data") as sink:
            assert sink.publisher.connected.wait(10)
            proxy.stall()
            shots = [snapshot(seed=i) for i in range(2)]
            for s in shots:
                sink.emit_snapshot(s)
            deadline = time.monotonic() + 5
            while sink.publisher.published_snapshots < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sink.publisher.published_snapshots == 2  # on the wire, held by the proxy
            assert sink.snapshots.stats().queued == 2  # not deleted before a PUBACK
            proxy.cut()
            proxy.resume()
            got = wait_snapshots(sub, {s.event_id for s in shots}, 15)
            assert len(got) == 2 and sink.publisher.connects >= 2
            assert wait_empty(sink.snapshots, 5)
            assert sink.publisher.published_snapshots >= 4  # sent again
    finally:
        proxy.close()
        sub.close()
        b.stop()


def test_broker_down_for_a_while_then_every_committed_snapshot_arrives(tmp_path: Path) -> None:
    """The broker keeps the hub's session (``persistence true``, as the shipped config does):
    a snapshot PUBACK'd before the hub re-subscribed is queued for it, not lost."""
    b = start_broker(tmp_path / "broker", persistence=True)
    sub = Subscriber(b.port, persistent=True, ack=True)
    try:
        with MqttSink(cfg(b.port), "cam1", tmp_path / "data") as sink:
            assert sink.publisher.connected.wait(10)
            first = [snapshot(seed=i) for i in range(3)]
            for s in first:
                sink.emit_snapshot(s)
            b.stop()  # by its PID; some of these may be in flight, un-PUBACK'd
            later = [snapshot(kind="best", seed=i) for i in range(5)]
            for s in later:
                sink.emit_snapshot(s)
            sink.emit_many(make_events(20))
            time.sleep(1.0)
            assert sink.snapshots.stats().queued >= 5  # kept while the broker is gone
            b.start()  # same port
            want = {s.event_id for s in first + later}
            got = wait_snapshots(sub, want, 15)
            assert want <= set(got), f"missing {len(want - set(got))} snapshot(s)"
            assert wait_empty(sink.snapshots, 5)
            assert sub.wait_seqs(list(range(20)), 10)
            for s in first + later:
                assert decode_snapshot(got[s.event_id])[1] == s.jpeg
    finally:
        sub.close()
        b.stop()


def test_a_crash_between_the_puback_and_the_delete_sends_it_again_after_restart(
    tmp_path: Path,
) -> None:
    """The delete after a PUBACK never happens (the process died first): the next start
    sends the snapshot again, the same bytes (the hub keeps one per event id and kind)."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port)
    data = tmp_path / "data"
    s = snapshot(kind="best")
    try:
        sink = MqttSink(cfg(b.port), "cam1", data)
        sink.snapshots.delete = lambda ids, refused=False: 0  # type: ignore[method-assign]  # dies before it
        sink.emit_snapshot(s)
        assert s.event_id in wait_snapshots(sub, {s.event_id}, 10)
        sink.close()
        with SnapshotStore(data / "snapshots.db", "cam1") as left:
            assert left.stats().queued == 1
        with MqttSink(cfg(b.port), "cam1", data) as again:
            assert wait_empty(again.snapshots, 10)
        deadline = time.monotonic() + 5
        while len(received(sub)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received(sub) == [received(sub)[0]] * 2
        assert decode_snapshot(received(sub)[0])[1] == s.jpeg
    finally:
        sub.close()
        b.stop()


def test_kill9_of_a_device_sending_snapshots_then_every_committed_one_arrives(
    tmp_path: Path,
) -> None:
    """A writer + publisher SIGKILLed at a random point (mid-commit, between a PUBACK and its
    delete): every snapshot whose commit had returned arrives after the restart, at least
    once; copies (sent, not yet deleted) are the same bytes, and the hub drops them."""
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)
    data = tmp_path / "data"
    data.mkdir()
    committed: set[str] = set()
    try:
        for delay in (0.7, 1.3):
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.snapshot_data", str(data), "--port",
                 str(b.port), "--every", "0.01"], cwd=REPO, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "open"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for line in proc.stdout.read().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] == "ok":
                    committed.add(parts[1])
        assert len(committed) > 10
        assert len(committed) * 70_000 < 16 << 20  # under the default bound: none dropped
        with MqttSink(cfg(b.port, delivery="broker"), "cam1", data) as sink:
            got = wait_snapshots(sub, committed, 20)
            assert committed <= set(got), f"lost {len(committed - set(got))} committed snapshot(s)"
            assert wait_empty(sink.snapshots, 10)
        for m in received(sub):  # every copy decodes: no torn message ever went out
            decode_snapshot(m)
    finally:
        sub.close()
        b.stop()


def test_kill9_mid_write_keeps_every_returned_put(tmp_path: Path) -> None:
    """The bare store, SIGKILLed mid-commit: WAL keeps every snapshot a put returned for."""
    committed: set[str] = set()
    for delay in (0.3, 0.6, 0.9):
        cmd = [sys.executable, "-m", "tests.support.snapshot_data", str(tmp_path)]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        committed |= {ln.split()[1] for ln in proc.stdout.read().splitlines() if ln[:3] == "ok "}
    assert len(committed) > 10
    store = SnapshotStore(tmp_path / "snapshots.db", "cam1")
    assert not store.stats().reset  # kill -9 is not damage
    stored = {decode_snapshot(r.message)[0].event_id for r in store.read(-1, 10_000)}
    assert committed <= stored


def test_the_size_bound_drops_the_oldest_snapshots_and_never_an_event(tmp_path: Path) -> None:
    port = free_port()
    b = Broker(tmp_path / "broker", port, persistence=True).start()
    sub = Subscriber(port, persistent=True, ack=True)  # the hub's session outlives the outage
    b.stop()  # down while the device queues everything
    c = cfg(port, outbox={"snapshot_max_bytes": SNAPSHOT_MIN_BYTES, "max_bytes": 4_000_000})
    try:
        with MqttSink(c, "cam1", tmp_path / "data") as sink:
            shots = []
            for i in range(40):  # ~70 KB each: 2.8 MB against a ~1 MB budget
                s = snapshot(kind="best", seed=i, width=320, height=240)
                shots.append(s)
                sink.emit_snapshot(s)
                sink.emit_many(make_events(25))
            st = sink.snapshots.stats()
            assert st.dropped > 20 and st.bytes <= SNAPSHOT_MIN_BYTES
            assert sink.outbox.stats().dropped == 0 and sink.outbox.stats().depth == 1000
            kept = {s.event_id for s in shots[st.dropped :]}
            b.start()
            assert sub.wait_seqs(list(range(1000)), 20), "an event was lost"
            got = wait_snapshots(sub, kept, 15)
            assert set(got) == kept  # the newest arrive, the dropped ones never do
            assert wait_empty(sink.snapshots, 5)
    finally:
        sub.close()
        b.stop()


@pytest.mark.parametrize("reserve", [True, False], ids=["reserve", "sqlite-full"])
def test_a_full_disk_costs_snapshots_not_events_and_recovers_by_itself(
    tmp_path: Path, reserve: bool
) -> None:
    """``reserve``: the store sees the disk is nearly full and does not try; without it the
    commit really fails (SQLITE_FULL) and the WAL it grew is given back to the events."""
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        ob = Outbox(mnt / "outbox.db", "cam1", uuid7(), state_path=mnt / "state.json")
        store = SnapshotStore(mnt / "snapshots.db", "cam1")
        if not reserve:
            store.disk_reserve = 0
        try:
            ob.append(make_events(10))
            filler = fill(mnt)
            with filler.open("r+b") as f:  # room for a few small event commits, not a picture
                f.truncate(filler.stat().st_size - 96 * 1024)
            big = snapshot(seed=1, width=640, height=480)  # ~250 KB
            assert not store.put(big)  # never raises
            st = store.stats()
            assert st.lost == 1 and st.queued == 0
            h = store.health()
            assert not h.ok and not h.fatal and h.dependency and "lost" in (h.reason or "")
            assert ("nearly full" if reserve else "database or disk is full") in (h.reason or "")
            assert ob.append(make_events(5)) == 5  # events are not affected
            assert ob.health().ok
            filler.unlink()
            assert store.put(snapshot(seed=2, width=640, height=480))
            h = store.health()
            assert h.ok and "recovered" in (h.reason or "")
            assert store.stats().queued == 1
        finally:
            store.close()
            ob.close()


def test_a_damaged_snapshot_file_is_moved_aside_and_the_daemon_still_delivers_events(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "snapshots.db").write_bytes(b"PK\x03\x04 a zip file, not SQLite" * 200)
    b = start_broker(tmp_path / "broker")
    sub = Subscriber(b.port, ack=True)
    try:
        with MqttSink(cfg(b.port), "cam1", data) as sink:
            sink.emit_many(make_events(10))
            assert sub.wait_seqs(list(range(10)), 10)
            assert len(list(data.glob("snapshots.db.corrupt-*"))) == 1
            health = {h.name: h for h in sink.health()}
            assert health["sync-snapshots"].ok and "moved aside" in (
                health["sync-snapshots"].reason or ""
            )
            s = snapshot()
            sink.emit_snapshot(s)
            assert s.event_id in wait_snapshots(sub, {s.event_id}, 10)
    finally:
        sub.close()
        b.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_broker_that_refuses_the_topic_costs_the_pictures_not_the_link(
    tmp_path: Path, protocol: str
) -> None:
    """An ACL from before snapshots: v5 answers 0x87 in the PUBACK. The snapshot is dropped
    (counted as refused), not resent for ever with a reconnect each time; events flow."""
    acl = tmp_path / "acl"
    acl.write_text("pattern write edgewise/v1/%c/events\npattern write edgewise/v1/%c/status\n"
                   "pattern write edgewise/v1/%c/telemetry\npattern read edgewise/v1/%c/ack\n"
                   "topic read edgewise/v1/#\ntopic write edgewise/v1/+/ack\n")  # fmt: skip
    b = start_broker(tmp_path / "broker", f"acl_file {acl}")
    sub = Subscriber(b.port, ack=True)
    try:
        with MqttSink(cfg(b.port, protocol=protocol), "cam1", tmp_path / "data") as sink:
            assert sink.publisher.connected.wait(10)
            for i in range(3):
                sink.emit_snapshot(snapshot(seed=i))
            assert wait_empty(sink.snapshots, 10)
            sink.emit_many(make_events(10))
            assert sub.wait_seqs(list(range(10)), 10)
            assert received(sub) == []
            assert sink.publisher.connects == 1  # no reconnect loop
            st = sink.snapshots.stats()
            assert (st.refused, st.sent) == ((3, 0) if protocol == "5" else (0, 3))
    finally:
        sub.close()
        b.stop()
