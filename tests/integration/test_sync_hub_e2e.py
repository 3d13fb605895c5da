"""issue 10 cases 1 and 9 end to end with the real hub: MqttSink (delivery = "hub") → a
private mosquitto → `edge-hub serve` on SQLite. The outbox empties only through the hub's
own HubAckV1s, and an event the hub would refuse never reaches it nor spoils its batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud_sync.sink import MqttSink
from edge.config import SyncConfig
from tests.support.publisher_proc import make_events

from .hub_support import HubProc, mosquitto, wait_for

pytestmark = pytest.mark.slow


def test_hub_acks_drain_the_outbox_and_bad_events_stay_on_the_device(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1", tmp_path / "hub.log")
        try:
            cfg = SyncConfig(port=port, reconnect_min_s=0.05, reconnect_max_s=0.3)
            with MqttSink(cfg, "cam9", tmp_path / "dev") as sink:
                sent: list[str] = []
                for i in range(10):
                    group = make_events(5)
                    if i % 3 == 0:
                        group[2].score = 1.5  # the hub would refuse the whole batch for it
                    sink.emit_many(group)
                    sent += [e.id for j, e in enumerate(group) if not (i % 3 == 0 and j == 2)]
                assert sink.publisher.wait_drained(20), (tmp_path / "hub.log").read_text()[-2000:]
                st = sink.outbox.stats()
                assert st.dead_letters == 4 and st.depth == 0 and st.next_seq == 46
                assert sink.publisher.hub_acks >= 1

            def stored() -> list[dict[str, Any]] | None:
                page = hub.get("/api/events?device=cam9&order=asc&limit=1000")["events"]
                return list(page) if len(page) >= 46 else None

            events = wait_for(stored, 15)
            assert [e["seq"] for e in events] == list(range(46))
            assert sorted(e["id"] for e in events) == sorted(sent)
        finally:
            hub.stop()


def test_events_the_broker_took_before_the_hub_subscribed_are_resent_when_it_does(
    tmp_path: Path,
) -> None:
    """issue 10 case 9: a broker PUBACKs events while no hub subscription exists (after a
    broker restart mosquitto has the hub's session but not its $share subscription); they
    reach nobody. The hub's HubOnlineV1 after its SUBACK makes the device resend them at
    once, not after hub_ack_timeout_s (here an hour, so only the announcement can do it)."""
    with mosquitto(tmp_path) as port:
        cfg = SyncConfig(
            port=port, reconnect_min_s=0.05, reconnect_max_s=0.3, hub_ack_timeout_s=3600
        )
        with MqttSink(cfg, "cam7", tmp_path / "dev") as sink:
            assert sink.publisher.connected.wait(10)
            for _ in range(4):
                sink.emit_many(make_events(5))

            def all_delivered() -> bool | None:
                st = sink.outbox.stats()
                return True if st.depth == 20 and st.delivered_unacked == 20 else None

            wait_for(all_delivered, 10)  # PUBACK'd by the broker, received by nobody
            hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1",
                          tmp_path / "hub.log")  # fmt: skip
            try:
                assert sink.publisher.wait_drained(20), (tmp_path / "hub.log").read_text()[-2000:]
                page = wait_for(
                    lambda: (
                        p
                        if len(
                            p := hub.get("/api/events?device=cam7&order=asc&limit=100")["events"]
                        )
                        >= 20
                        else None
                    ),
                    10,
                )
                assert [e["seq"] for e in page] == list(range(20))
                assert sink.publisher.resent_events >= 20
            finally:
                hub.stop()
