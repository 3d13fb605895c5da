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
