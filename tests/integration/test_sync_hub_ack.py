"""issue 10 case 9 (device side): end-to-end delivery by hub acknowledgement, against a
real mosquitto. The test's subscriber plays the hub (HubAckV1 on <prefix>/<device>/ack)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from tests.support.mosquitto import Broker, start_broker
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events

pytestmark = pytest.mark.slow


def cfg(port: int, **kw: Any) -> SyncConfig:
    base: dict[str, Any] = {"port": port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.3,
                            "puback_timeout_s": 2.0, "connect_timeout_s": 2.0,
                            "hub_ack_timeout_s": 30.0}  # fmt: skip
    return SyncConfig.model_validate({**base, **kw})


def wait(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def test_rows_stay_after_puback_and_go_only_with_the_hub_ack(
    broker: Broker, tmp_path: Path
) -> None:
    sub = Subscriber(broker.port)  # receives, does not ack
    with MqttSink(cfg(broker.port), "cam1", tmp_path) as sink:
        sink.emit_many(make_events(10))
        assert sub.wait_seqs(list(range(10)), 10)
        assert wait(lambda: sink.outbox.stats().delivered_unacked == 10)
        assert sink.outbox.stats().depth == 10  # PUBACK'd but the hub has not said so: kept
        sub.send_ack("cam2", [(0, 9)])  # another device's ack topic: not ours
        sub.send_ack("cam1", [(0, 3), (7, 7)])
        assert wait(lambda: sink.outbox.stats().depth == 5)
        assert [r.seq for r in sink.outbox.read_range(0, 100)] == [4, 5, 6, 8, 9]
        sub.client.publish("edgewise/v1/cam1/ack", b'{"v":1,"device_id":"cam1"}', 1)  # invalid
        assert wait(lambda: sink.publisher.invalid_acks == 1)
        assert sink.outbox.stats().depth == 5
        sub.send_ack("cam1", [(0, 100)])
        assert sink.publisher.wait_drained(10)
    sub.close()


def test_unacked_rows_are_resent_after_the_timeout_then_stop(
    broker: Broker, tmp_path: Path
) -> None:
    sub = Subscriber(broker.port)
    with MqttSink(cfg(broker.port, hub_ack_timeout_s=0.5), "cam1", tmp_path) as sink:
        sink.emit_many(make_events(5))
        assert sub.wait_seqs(list(range(5)), 10)
        assert wait(lambda: len(sub.batches) >= 2, 5), "never resent"  # the same events again
        with sub.lock:
            assert all(len(sub.ids[s]) == 1 for s in range(5))  # same ids: the hub dedups
        assert sink.publisher.resent_events >= 5
        sub.send_ack("cam1", [(0, 4)])
        assert sink.publisher.wait_drained(5)
        n = len(sub.batches)
        time.sleep(1.5)
        assert len(sub.batches) == n  # acked: no more resends
    sub.close()


def test_broker_delivery_deletes_on_puback(broker: Broker, tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    with MqttSink(cfg(broker.port, delivery="broker"), "cam1", tmp_path) as sink:
        sink.emit_many(make_events(7))
        assert sink.publisher.wait_drained(10)  # no hub needed
        assert sub.wait_seqs(list(range(7)), 5)
    sub.close()


def test_ack_subscription_is_renewed_on_every_connect(tmp_path: Path) -> None:
    b = start_broker(tmp_path / "broker")
    try:
        sub = Subscriber(b.port)
        with MqttSink(cfg(b.port), "cam1", tmp_path) as sink:
            sink.emit_many(make_events(3))
            assert sub.wait_seqs([0, 1, 2], 10)
            sub.close()
            b.restart()  # no persistence: the device's subscriptions are gone with it
            assert wait(lambda: sink.publisher.connects >= 2, 15)
            sub = Subscriber(b.port)
            for _ in range(20):  # again until it lands (the SUBACK may still be on its way)
                sub.send_ack("cam1", [(0, 2)])
                if sink.publisher.wait_drained(0.5):
                    break
            assert sink.outbox.stats().depth == 0
        sub.close()
    finally:
        b.stop()


def test_status_birth_carries_epoch_seq_start_and_outbox_reset(
    broker: Broker, tmp_path: Path
) -> None:
    """issue 10 case 11: the hub learns where this boot's seqs start and whether the
    outbox was lost, from the retained birth."""
    sub = Subscriber(broker.port, ack=True)
    with MqttSink(cfg(broker.port), "cam1", tmp_path) as sink:
        sink.emit_many(make_events(4))
        assert sink.publisher.wait_drained(10)
    first = sub.wait_status("stopped")
    births = [s for s in sub.statuses if s["state"] == "online"]
    assert births[-1]["epoch"] == 1 and births[-1]["seq_start"] == 0
    assert births[-1].get("outbox_reset", False) is False
    assert "epoch" not in first  # only the birth carries them
    (tmp_path / "outbox.db").unlink()  # the outbox is lost while the daemon is stopped
    with MqttSink(cfg(broker.port), "cam1", tmp_path) as sink:
        assert sink.publisher.connected.wait(10)
        assert wait(lambda: len([s for s in sub.statuses if s["state"] == "online"]) == 2)
        birth = [s for s in sub.statuses if s["state"] == "online"][-1]
        assert birth["epoch"] == 2 and birth["outbox_reset"] is True
        assert birth["seq_start"] >= 4  # above every seq the first boot used
    sub.close()
