"""Scale-out: two `edge-hub serve` workers, one shared subscription, one PostgreSQL."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from tests.support.prom import value

from .hub_support import HubProc, Publisher, make_batch, mosquitto, pg_database, wait_for

pytestmark = pytest.mark.slow


def stored(hub: HubProc) -> int:
    text = urllib.request.urlopen(hub.url("/metrics")).read().decode()
    return int(value(text, "edge_hub_events_stored_total"))


def test_two_workers_store_each_event_exactly_once(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    devices = {f"cam-{i}": str(uuid.uuid4()) for i in range(4)}
    with pg_database() as url, mosquitto(tmp_path) as port:
        a = HubProc(url, port, prefix, tmp_path / "a.log", "--group", "g1")
        b = HubProc(url, port, prefix, tmp_path / "b.log", "--group", "g1")
        pub = Publisher(port)
        try:
            ids: set[str] = set()
            for start in range(0, 500, 20):
                for d, boot in devices.items():
                    batch = make_batch(d, boot, range(start, start + 20))
                    ids |= {e.id for e in batch.events}
                    pub.publish(topic(prefix, d, "events"), [batch.model_dump_json().encode()])
            total = len(ids)  # 4 devices x 500
            wait_for(lambda: sum(x["events"] for x in a.get("/api/devices")["devices"]) >= total)
            seen: list[str] = []
            cursor = ""
            while True:
                page = b.get(f"/api/events?order=asc&limit=1000{cursor}")
                seen += [e["id"] for e in page["events"]]
                if page["next_cursor"] is None:
                    break
                cursor = f"&cursor={page['next_cursor']}"
            assert len(seen) == total and set(seen) == ids  # each exactly once
            assert a.get("/api/gaps") == {"gaps": []}
            sa, sb = stored(a), stored(b)
            assert sa + sb == total
            assert sa > 0 and sb > 0, (sa, sb)  # the broker split the load
        finally:
            pub.close()
            a.stop()
            b.stop()
