"""The dashboard's event queries on both engines (SQLite and the real PostgreSQL):
``/api/events`` filtered by stream and zone, one event (``/api/events/{id}``), a track's
timeline (``/api/events/{id}/track``), and the live feed's same filters; each with broken
and hostile values (unknown parameters, bad times, huge limits, SQL-looking strings, LIKE
wildcards that must not match as wildcards)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub, matches
from cloud_sync.hub.db import MAX_TRACK, Store
from cloud_sync.schema import EventBatchV1, EventV1, ModelRefV1, TelemetryV1, topic
from edge.compat import UTC

from .hub_support import HubProc, Publisher, mosquitto
from .test_hub_stream import sse

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
BOOT_A = str(uuid.uuid4())
BOOT_B = str(uuid.uuid4())


def ev(seq: int, **kw: Any) -> EventV1:
    t = T0 + timedelta(seconds=seq)
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()), "device_id": "door-1", "boot_id": BOOT_A, "seq": seq,
        "stream": "front", "kind": "vision", "label": "person", "score": 0.8, "phase": "start",
        "started_at": t, "ts": t, "box": [0.1, 0.2, 0.5, 0.9], "track_id": 1,
        "model": ModelRefV1(name="m", version="1", sha256="abcdef"), "latency_ms": 3.0,
    }  # fmt: skip
    return EventV1.model_validate({**base, **kw})


def scene() -> list[EventV1]:
    """Track 1 on stream front: start, update, enter driveway, exit, end; track 2 on
    stream back in zone a_b; track 1 again in another boot (not the same track); a face on
    front in zone axb (what an unescaped LIKE wildcard would match for a_b)."""
    return [
        ev(0),
        ev(1, phase="update", zones=["driveway"]),
        ev(2, phase="enter", zone="driveway", zones=["driveway"]),
        ev(3, phase="exit", zone="driveway", zones=[]),
        ev(4, phase="end"),
        ev(5, stream="back", track_id=2, zones=["a_b", "porch"]),
        ev(6, stream="front", track_id=3, label="face", zones=["axb"]),
        ev(7, boot_id=BOOT_B, track_id=1, phase="start"),
        ev(8, kind="audio", label="speech", stream="mic", track_id=None, box=None),
    ]


@pytest.fixture
def client(store: Store) -> Any:
    events = scene()
    by_boot: dict[str, list[EventV1]] = {}
    for e in events:
        by_boot.setdefault(e.boot_id, []).append(e)
    store.write(
        [EventBatchV1(device_id="door-1", boot_id=b, events=es) for b, es in by_boot.items()]
    )
    # no lifespan (no ``with``): the live feed's poller would outlive the store's close
    c = TestClient(Hub(store).app)
    c.scene = events  # type: ignore[attr-defined]
    return c


def seqs(client: TestClient, **params: Any) -> list[int]:
    r = client.get("/api/events", params={"order": "asc", **params})
    assert r.status_code == 200, r.text
    return [e["seq"] for e in r.json()["events"]]


def test_events_filter_by_stream_and_zone(client: TestClient) -> None:
    assert seqs(client, stream="back") == [5]
    assert seqs(client, stream="front") == [0, 1, 2, 3, 4, 6, 7]
    assert seqs(client, zone="driveway") == [1, 2, 3]  # zones holds it, or zone (exit) is it
    assert seqs(client, zone="a_b") == [5]  # not axb: '_' is no wildcard
    assert seqs(client, zone="porch") == [5]
    assert seqs(client, zone="drive") == []  # a whole name, not a substring
    assert seqs(client, zone="driveway", phase="enter") == [2]
    assert seqs(client, stream="front", label="face") == [6]
    assert seqs(client, stream="nowhere") == []
    since = (T0 + timedelta(seconds=2)).isoformat()
    until = (T0 + timedelta(seconds=4)).timestamp()
    assert seqs(client, stream="front", since=since, until=until) == [2, 3]


def test_zone_and_stream_filters_page_with_the_cursor(client: TestClient) -> None:
    got: list[int] = []
    params: dict[str, Any] = {"stream": "front", "limit": 2}
    for _ in range(10):
        body = client.get("/api/events", params=params).json()
        got += [e["seq"] for e in body["events"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert got == [7, 6, 4, 3, 2, 1, 0]


def test_one_event_and_unknown_ones(client: TestClient) -> None:
    e = client.scene[2]  # type: ignore[attr-defined]
    r = client.get(f"/api/events/{e.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == e.id and body["zone"] == "driveway" and body["box"] == [0.1, 0.2, 0.5, 0.9]
    assert client.get(f"/api/events/{e.id.upper()}").json()["id"] == e.id
    missing = client.get(f"/api/events/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"] == "no such event"
    assert client.get(f"/api/events/{uuid.uuid4()}/track").status_code == 404


def test_a_track_is_its_events_in_seq_order_within_one_boot_and_stream(
    client: TestClient,
) -> None:
    scene_ = client.scene  # type: ignore[attr-defined]
    for pick in (0, 2, 4):  # from any of its events
        body = client.get(f"/api/events/{scene_[pick].id}/track").json()
        assert [(x["seq"], x["phase"]) for x in body["events"]] == [
            (0, "start"), (1, "update"), (2, "enter"), (3, "exit"), (4, "end")]  # fmt: skip
        assert body["truncated"] is False
    other_boot = client.get(f"/api/events/{scene_[7].id}/track").json()["events"]
    assert [x["seq"] for x in other_boot] == [7]  # same track id, another boot
    audio = client.get(f"/api/events/{scene_[8].id}/track").json()["events"]
    assert [x["seq"] for x in audio] == [8]  # no track: the event alone
    short = client.get(f"/api/events/{scene_[0].id}/track", params={"limit": 2}).json()
    assert [x["seq"] for x in short["events"]] == [0, 1] and short["truncated"] is True


def test_a_long_track_is_bounded(store: Store) -> None:
    boot = str(uuid.uuid4())
    events = [ev(s, boot_id=boot, track_id=9, phase="update") for s in range(MAX_TRACK + 20)]
    for i in range(0, len(events), 500):
        store.write([EventBatchV1(device_id="door-1", boot_id=boot, events=events[i : i + 500])])
    body = TestClient(Hub(store).app).get(f"/api/events/{events[-1].id}/track").json()
    assert len(body["events"]) == MAX_TRACK and body["truncated"] is True
    assert [x["seq"] for x in body["events"][:3]] == [0, 1, 2]


HOSTILE = [
    ("/api/events?stream=front'%20OR%20'1'='1", "stream"),
    ("/api/events?zone=x%22%20OR%201=1--", "zone"),
    ("/api/events?zone=%25", "zone"),  # LIKE's wildcard as a whole name
    ("/api/events?zone=", "zone"),
    ("/api/events?stream=a/b", "stream"),
    ("/api/events?stream=" + "s" * 200, "stream"),
    ("/api/events?label=%00", "label"),
    ("/api/events?label=", "label"),
    ("/api/events?limit=99999999999999999999999", "limit"),
    ("/api/events?limit=-1", "limit"),
    ("/api/events?cursor=1e9", "cursor"),
    ("/api/events?since=nan", "since"),
    ("/api/events?since=2026-13-45T99:00:00Z", "since"),
    ("/api/events?until=tomorrow", "until"),
    ("/api/events?camera=front", "camera"),
    ("/api/events/1;DROP%20TABLE%20events", "event_id"),
    ("/api/events/not-a-uuid/track", "event_id"),
    ("/api/events/" + "a" * 5000, "event_id"),
    (f"/api/events/{uuid.uuid4()}/track?limit=0", "limit"),
    (f"/api/events/{uuid.uuid4()}/track?limit={MAX_TRACK + 1}", "limit"),
    (f"/api/events/{uuid.uuid4()}/track?limit=x", "limit"),
    ("/api/stream?zone=a%20b", "zone"),
    ("/api/stream?stream=%27", "stream"),
    ("/api/stream?colour=red", "colour"),
    ("/api/stream?last_event_id=x", "Last-Event-ID"),  # known (EventSource's query form)
]


@pytest.mark.parametrize(("path", "name"), HOSTILE)
def test_hostile_values_are_400_naming_the_parameter(
    client: TestClient, store: Store, path: str, name: str
) -> None:
    before = store.count_events()
    r = client.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(name), r.json()
    assert store.count_events() == before == len(client.scene)  # type: ignore[attr-defined]


def test_a_label_that_looks_like_sql_is_only_a_label(client: TestClient) -> None:
    assert seqs(client, label="person' OR '1'='1") == []
    assert seqs(client, label="%") == []  # equality, not LIKE
    assert seqs(client, label="person") == [0, 1, 2, 3, 4, 5, 7]


def test_the_live_feed_filters_like_the_history() -> None:
    e = {"device_id": "d", "stream": "front", "zone": None, "zones": ["a_b", "porch"]}
    assert matches(e, "zone", "porch") and matches(e, "zone", "a_b")
    assert not matches(e, "zone", "axb") and not matches(e, "zone", "por")
    assert matches({"zone": "driveway", "zones": []}, "zone", "driveway")
    assert not matches({"zone": None, "zones": None}, "zone", "driveway")
    assert matches(e, "stream", "front") and not matches(e, "stream", "back")


def test_telemetry_rows_keep_video_frames_and_audio_chunks_apart(store: Store) -> None:
    """The stored ``fps`` adds frames to chunks (kept for old readers); ``streams`` has
    each stream's kind and rate, ``detectors`` each one's inference ms and calls."""
    tel = TelemetryV1.model_validate({
        "device_id": "door-1", "boot_id": BOOT_A, "ts": datetime.now(UTC).isoformat(),
        "uptime_s": 5.0, "reconnects": 0,
        "streams": {"front": {"kind": "video", "fps_in": 12.0, "fps_processed": 12.0,
                              "dropped": 0},
                    "mic": {"kind": "audio", "fps_in": 31.25, "fps_processed": 31.25,
                            "dropped": 0}},
        "detectors": {"objects": {"inference_ms": 40.0, "calls": 77}}})  # fmt: skip
    store.write([], [], [tel])
    (row,) = TestClient(Hub(store).app).get("/api/devices/door-1/telemetry").json()["telemetry"]
    assert row["fps"] == 43.25  # the old sum
    assert row["streams"] == {"front": {"kind": "video", "fps": 12.0},
                              "mic": {"kind": "audio", "fps": 31.25}}  # fmt: skip
    assert row["detectors"] == {"objects": {"inference_ms": 40.0, "calls": 77}}
    assert row["boot_id"] == BOOT_A


def test_the_live_feed_applies_stream_and_zone_filters_live_and_on_resume(
    tmp_path: Path,
) -> None:
    """A real hub: only the events in zone a_b on stream back come, live and when the
    client resumes with Last-Event-ID (the backfill path filters too)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            url = hub.url("/api/stream?zone=a_b&stream=back")
            live = sse(url)
            time.sleep(0.3)
            events = scene()  # only seq 5 is on back, in a_b (axb must not match)
            pub.publish(topic(prefix, "door-1", "events"), [
                EventBatchV1(device_id="door-1", boot_id=BOOT_A, events=events[:7])
                .model_dump_json().encode()])  # fmt: skip
            _, first = next(live)
            assert first["seq"] == 5
            more = ev(20, stream="back", zone="a_b", phase="enter", zones=["a_b"], track_id=2)
            pub.publish(topic(prefix, "door-1", "events"), [
                EventBatchV1(device_id="door-1", boot_id=BOOT_A, events=[more])
                .model_dump_json().encode()])  # fmt: skip
            assert next(live)[1]["seq"] == 20  # nothing in between
            resumed = sse(url, last_id=0)
            assert [next(resumed)[1]["seq"] for _ in range(2)] == [5, 20]
        finally:
            pub.close()
            hub.stop()
