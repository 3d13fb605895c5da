"""Delivery against a real mosquitto: order, status, broker restarts, kill -9, outages.

Each test starts its own broker on a free port (tests/support/mosquitto.py); the
machine's broker on 1883 is never touched. Ground truth for "nothing lost" is
the outbox's own ``next_seq``: every seq below it was committed and must arrive.
Devices run with ``delivery = "hub"`` (the default); the subscriber plays the hub
(``ack=True``: a HubAckV1 for every batch), so "drained" means the hub has it all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psutil
import pytest

from cloud_sync.sink import MqttSink
from edge.config import OutboxConfig, SyncConfig
from tests.support.device_proc import DeviceProc
from tests.support.mosquitto import Broker, free_port
from tests.support.mqtt_sub import Subscriber, retained_status
from tests.support.publisher_proc import make_events

pytestmark = pytest.mark.slow


def fast_cfg(port: int, **kw: object) -> SyncConfig:
    base: dict[str, object] = {
        "port": port,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "keepalive_s": 5,
        "puback_timeout_s": 2.0,
        "connect_timeout_s": 2.0,
        "telemetry_interval_s": 0.2,
    }
    base.update(kw)
    return SyncConfig.model_validate(base)


def committed_next_seq(db: Path) -> int:
    with sqlite3.connect(db) as c:
        return int(c.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])


def assert_no_duplicate_ids(sub: Subscriber) -> None:
    with sub.lock:
        assert all(len(ids) == 1 for ids in sub.ids.values()), "a seq arrived with two event ids"


def test_events_arrive_in_seq_order_with_schema_fields(broker: Broker, tmp_path: Path) -> None:
    sub = Subscriber(broker.port, ack=True)
    with MqttSink(fast_cfg(broker.port), "cam1", tmp_path) as sink:
        sent = []
        for _ in range(30):
            group = make_events(10)
            sent += group
            sink.emit_many(group)
        assert sink.publisher.wait_drained(10)
        time.sleep(0.5)
    assert sub.wait_seqs(list(range(300)), 5)
    order = [e.seq for b in sub.batches for e in b.events]
    assert order == list(range(300))  # in order on the wire, not just complete
    got = {e.id: e for b in sub.batches for e in b.events}
    assert [got[e.id].seq for e in sent] == list(range(300))
    first = got[sent[0].id]
    assert first.device_id == "cam1" and first.boot_id == sink.boot_id
    assert first.box == [0.1, 0.2, 0.3, 0.4] and first.model.name == "blazeface-short"
    assert sub.telemetry and sub.telemetry[-1].outbox.dropped == 0
    assert [s["state"] for s in sub.statuses] == ["online", "stopped"]
    sub.close()


def test_status_online_offline_after_kill9_stopped_after_sigterm(
    broker: Broker, tmp_path: Path
) -> None:
    dev = DeviceProc(broker.port, tmp_path / "dev")
    dev.wait_line("ready")
    _wait_retained(broker.port, "online")
    dev.kill9()
    _wait_retained(broker.port, "offline")  # the broker's LWT
    dev = DeviceProc(broker.port, tmp_path / "dev")
    _wait_retained(broker.port, "online")
    assert dev.terminate() == 0
    assert _wait_retained(broker.port, "stopped")["device_id"] == "cam1"


def _wait_retained(port: int, state: str, timeout: float = 10.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = retained_status(port, "cam1")
        if last and last["state"] == state:
            return last
        time.sleep(0.1)
    raise AssertionError(f"retained status never became {state!r}; last {last}")


def test_broker_restarted_several_times_while_streaming(tmp_path: Path) -> None:
    # persistence + SIGTERM: the broker keeps the hub's session and its queue across restarts;
    # what the broker did after its PUBACK is its own durability, not the device's
    b = Broker(tmp_path / "broker", free_port(), persistence=True).start()
    sub = Subscriber(b.port, persistent=True, ack=True)
    dev = DeviceProc(b.port, tmp_path / "dev", emit=3000, group=10, every=0.004)
    dev.wait_line("ready")
    for _ in range(3):
        time.sleep(0.5)
        b.restart()
    dev.wait_line("emitted", timeout=60)
    n = committed_next_seq(tmp_path / "dev" / "outbox.db")
    assert n == 3000
    ok = sub.wait_seqs(list(range(n)), 30)
    missing = sorted(set(range(n)) - set(sub.seqs()))
    assert ok, f"missing {len(missing)} seqs, first {missing[:10]}"
    assert_no_duplicate_ids(sub)
    dev.terminate()
    sub.close()
    b.stop()


def test_device_kill9_while_broker_down_then_both_restart(tmp_path: Path) -> None:
    b = Broker(tmp_path / "broker", free_port())  # not started: the broker is down
    dev = DeviceProc(b.port, tmp_path / "dev", emit=500, group=7)
    dev.wait_line("emitted", timeout=30)
    dev.kill9()
    n = committed_next_seq(tmp_path / "dev" / "outbox.db")
    assert n == 500
    b.start()
    sub = Subscriber(b.port, ack=True)
    dev = DeviceProc(b.port, tmp_path / "dev")
    assert sub.wait_seqs(list(range(n)), 20), f"got {len(sub.seqs())} of {n}"
    assert_no_duplicate_ids(sub)
    dev.terminate()
    sub.close()
    b.stop()


def test_proxy_that_stalls_and_cuts_loses_nothing_and_memory_stays_bounded(
    broker: Broker, tmp_path: Path
) -> None:
    from tests.support.tcp_proxy import TcpProxy

    sub = Subscriber(broker.port, ack=True)
    with TcpProxy("127.0.0.1", broker.port) as proxy:
        cfg = fast_cfg(proxy.port, puback_timeout_s=1.0, connect_timeout_s=1.0, inflight=8)
        with MqttSink(cfg, "cam1", tmp_path) as sink:
            stop = threading.Event()
            rss: list[int] = []

            def produce() -> None:
                while not stop.is_set():
                    sink.emit_many(make_events(20))
                    rss.append(psutil.Process().memory_info().rss)
                    time.sleep(0.01)

            t = threading.Thread(target=produce)
            t.start()
            time.sleep(0.5)
            for _ in range(2):
                proxy.stall()
                time.sleep(2.0)  # longer than the PUBACK timeout: the device reconnects
                proxy.resume()
                time.sleep(0.5)
                proxy.cut()
                time.sleep(0.5)
            stop.set()
            t.join()
            n = sink.outbox.stats().next_seq
            assert sink.publisher.wait_drained(20)
            assert sink.publisher.reconnects >= 2
        assert proxy.connections >= 3
    assert sub.wait_seqs(list(range(n)), 10), f"got {len(sub.seqs())} of {n}"
    assert_no_duplicate_ids(sub)
    # the outbox is on disk, and at most `inflight` batches sit in memory
    growth_mb = (max(rss) - rss[len(rss) // 10]) / 2**20
    assert growth_mb < 40, f"RSS grew {growth_mb:.1f} MB while stalled"
    sub.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "reject_new"])
def test_outbox_full_policy_is_applied_counted_and_delivery_goes_on(
    tmp_path: Path, policy: str
) -> None:
    # A subscriber session that the broker keeps (and queues for) while nobody is connected,
    # so what the device publishes the moment the broker is back cannot race the subscription.
    b = Broker(tmp_path / "broker", free_port(), persistence=True).start()
    Subscriber(b.port, persistent=True).close()
    b.stop()  # down while the outbox fills
    try:
        cfg = fast_cfg(b.port, outbox=OutboxConfig(max_bytes=40_000, when_full=policy))
        with MqttSink(cfg, "cam1", tmp_path) as sink:
            kept = sum(sink.emit_many(make_events(10)) for _ in range(100))  # ~400 bytes each
            st = sink.outbox.stats()
            assert st.bytes <= 40_000
            if policy == "drop_oldest":
                assert kept == 1000 and st.dropped > 0 and st.rejected == 0
                expected = list(range(st.dropped, 1000))  # the newest survive
            else:
                assert kept < 1000 and st.rejected == 1000 - kept and st.dropped == 0
                expected = list(range(kept))  # the oldest survive, no seq spent on rejects
            b.start()
            sub = Subscriber(b.port, persistent=True, ack=True)
            assert sub.wait_seqs(expected, 20), f"got {len(sub.seqs())}, expected {len(expected)}"
            # delivered-but-unacked rows count toward max_bytes: room comes with the hub's acks
            assert sink.publisher.wait_drained(10)
            sink.emit_many(make_events(5))  # still running and accepting
            assert sub.wait_seqs([*expected, *range(expected[-1] + 1, expected[-1] + 6)], 10)
            deadline = time.monotonic() + 5
            while not sub.telemetry and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sub.telemetry[-1].outbox.dropped == 1000 - len(expected)
        sub.close()
    finally:
        b.stop()  # also when an assertion failed: no broker left running
