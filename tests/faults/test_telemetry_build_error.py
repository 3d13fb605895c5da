"""issue 10: a telemetry build error must never kill the sender; it is counted and reported.

The incident: two daemons shared one data dir, the outbox's depth counter went to -1,
``OutboxStatsV1(depth=-1)`` raised on the publisher's sender thread and delivery
stopped. Here the outbox reports that same figure (and the daemon's ``stats()`` fails
too); events must still arrive and telemetry must still go out, saying what it left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cloud_sync.outbox import OutboxStats
from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from edge.stats import DeviceStats
from tests.support.mosquitto import Broker
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events


class BrokenControl:
    """A DeviceControl whose stats() fails (the rest is never called here)."""

    def stats(self) -> DeviceStats:
        raise RuntimeError("stats exploded")


def wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_negative_outbox_depth_neither_stops_delivery_nor_telemetry(
    broker: Broker, tmp_path: Path
) -> None:
    cfg = SyncConfig.model_validate(
        {"port": broker.port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.3,
         "telemetry_interval_s": 0.2}
    )  # fmt: skip
    sub = Subscriber(broker.port)
    sink = MqttSink(cfg, "dev-tel", tmp_path, BrokenControl())  # type: ignore[arg-type]
    real = sink.outbox.stats

    def negative_depth() -> OutboxStats:
        return replace(real(), depth=-1)

    sink.outbox.stats = negative_depth  # type: ignore[method-assign]  # the incident's figure
    try:
        sink.emit_many(make_events(3))
        assert sub.wait_seqs([0, 1, 2], 10), f"events before: got {sub.seqs()}"
        # several telemetry rounds with the bad figure, then more events: still delivered
        assert wait(lambda: len(sub.telemetry) >= 3, 10), "no telemetry went out"
        sink.emit_many(make_events(2))
        assert sub.wait_seqs([0, 1, 2, 3, 4], 10), f"events after: got {sub.seqs()}"
        # stats() and the outbox fail every round, and each failure is counted: the count
        # keeps growing (waited for, since a message may have been built mid-round)
        assert wait(lambda: sub.telemetry[-1].build_errors >= 2 * 3, 10), sub.telemetry[-1]
        t = sub.telemetry[-1]
        assert t.outbox is None  # left out, not made up
        assert any(e.startswith("outbox left out") and "depth" in e for e in t.errors), t.errors
        assert "DeviceControl.stats() failed: RuntimeError: stats exploded" in t.errors
    finally:
        sink.close()
        sub.close()
