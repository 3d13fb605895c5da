"""The pieces behind quarantine and acks, without a broker: salvaging a batch's good events,
seq ranges for HubAckV1, splitting gaps at status births, and the depth guard in decode."""

from __future__ import annotations

import json
import uuid

from cloud_sync.hub.db.gaps import Birth, Hole, split
from cloud_sync.hub.ingest import subscriptions
from cloud_sync.hub.validate import Rejected, decode, salvage_batch
from cloud_sync.hub.writer import seq_ranges
from cloud_sync.schema import HubAckV1
from tests.unit.test_hub_validate import BOOT, P, event

T = f"{P}/cam-1/events"


def _batch(events: list[dict[str, object]], **over: object) -> bytes:
    doc: dict[str, object] = {"v": 1, "device_id": "cam-1", "boot_id": BOOT, "events": events}
    doc.update(over)
    return json.dumps(doc).encode()


def test_a_batch_with_one_bad_event_keeps_the_others() -> None:
    bad = event(seq=2)
    bad["score"] = 7.0
    payload = _batch([event(seq=0), event(seq=1), bad, event(seq=3)])
    assert isinstance(decode(P, T, payload), Rejected)
    s = salvage_batch(P, T, payload)
    assert s is not None and s.good is not None
    assert [e.seq for e in s.good.events] == [0, 1, 3]
    (b,) = s.bad
    assert b.seq == 2 and b.detail.startswith("events.2.score") and json.loads(b.raw) == bad


def test_nothing_to_salvage_when_the_batch_itself_is_wrong() -> None:
    assert salvage_batch(P, T, _batch([event()], device_id="cam-2")) is None
    assert salvage_batch(P, T, _batch([event()], v=2)) is None
    assert salvage_batch(P, T, _batch([event()], extra=1)) is None
    assert salvage_batch(P, T, b"[" * 100_000) is None
    assert salvage_batch(P, f"{P}/cam-1/status", _batch([event()])) is None
    odd = event(seq=5)
    odd["seq"] = "5"  # strict: a string seq is bad, and not a seq the hub can acknowledge
    s = salvage_batch(P, T, _batch([odd]))
    assert s is not None and s.good is None and s.bad[0].seq is None


def test_deep_json_is_refused_without_recursion() -> None:
    r = decode(P, T, b"[" * 100_000 + b"]" * 100_000)
    assert isinstance(r, Rejected) and r.reason == "not_json" and "deeper" in r.detail


def test_seq_ranges_merge_and_fit_a_hub_ack() -> None:
    assert seq_ranges([5, 1, 2, 3, 3, 7, 6]) == [[1, 3], [5, 7]]
    assert seq_ranges([]) == []
    HubAckV1(device_id="cam-1", ranges=seq_ranges(range(0, 2000, 2))[:1000])


def test_the_hub_never_subscribes_to_its_own_acks_or_commands() -> None:
    from paho.mqtt.client import topic_matches_sub

    for shared in (True, False):
        filters = [f.split("/", 2)[-1] if f.startswith("$share/") else f
                   for f in subscriptions(P, "g", shared)]  # fmt: skip
        for t in (f"{P}/cam-1/ack", f"{P}/cam-1/cmd/config"):
            assert not any(topic_matches_sub(f, t) for f in filters), (t, filters)


def test_gaps_split_at_births() -> None:
    b = str(uuid.uuid4())
    hole = Hole(10, 99, 1.0, 2.0)
    assert split(hole, []) == [(10, 99, "in_transit", None)]
    assert split(hole, [Birth(b, 50, True)]) == [
        (10, 49, "outbox_reset", b), (50, 99, "in_transit", None)
    ]  # fmt: skip
    assert split(hole, [Birth(b, 50, False)]) == [(10, 99, "in_transit", None)]
    assert split(hole, [Birth(b, 100, True)]) == [(10, 99, "outbox_reset", b)]
    assert split(hole, [Birth(b, 5, True), Birth(b, 200, True)]) == [(10, 99, "in_transit", None)]
