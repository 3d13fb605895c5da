"""The store's contract on both engines: SQLite, and the real PostgreSQL when reachable."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest

from cloud_sync.hub.db import EventQuery, Store, open_store
from cloud_sync.hub.errors import QueryError, StoreError
from cloud_sync.hub.validate import Reply
from cloud_sync.schema import CommandReplyV1, EventBatchV1, EventV1, StatusV1
from edge.compat import UTC

from .hub_support import make_batch, make_telemetry

BOOT = str(uuid.uuid4())


def test_each_event_is_stored_once_across_redeliveries(store: Store) -> None:
    b1, b2 = make_batch("d1", BOOT, range(0, 5)), make_batch("d1", BOOT, range(5, 10))
    assert store.write([b1]).stored == 5
    r = store.write([b1, b2])  # b1 redelivered alongside the next batch
    assert (r.stored, r.duplicates) == (5, 5)
    assert store.count_events() == 10
    assert store.migrate() == 6  # idempotent


def test_gaps_show_and_close_when_late_batches_arrive(store: Store) -> None:
    store.write([make_batch("d1", BOOT, [0, 1, 2, 6, 7]), make_batch("d2", BOOT, [0, 1])])
    gaps = store.gaps()
    assert [(g["device_id"], g["from_seq"], g["to_seq"], g["missing"]) for g in gaps] == [
        ("d1", 3, 5, 3)
    ]
    store.write([make_batch("d1", BOOT, [4])])  # out of order: splits the gap
    assert [(g["from_seq"], g["to_seq"]) for g in store.gaps("d1")] == [(3, 3), (5, 5)]
    store.write([make_batch("d1", BOOT, [3, 5])])
    assert store.gaps() == []
    boots = store.device("d1")["boots"]  # type: ignore[index]
    assert [(b["first_seq"], b["last_seq"]) for b in boots] == [(0, 7)]


def test_cursor_pagination_and_filters(store: Store) -> None:
    store.write([make_batch("d1", BOOT, range(0, 25), label="face")])
    store.write([make_batch("d2", BOOT, range(0, 5), label="speech", kind="audio")])
    seen: list[int] = []
    cursor = None
    while True:
        page, cursor = store.events(EventQuery(device="d1", limit=10, cursor=cursor))
        seen += [e["seq"] for e in page]
        if cursor is None:
            break
    assert seen == list(range(24, -1, -1))  # newest first, every event once
    page, _ = store.events(EventQuery(kind="audio", order="asc", limit=100))
    assert [(e["device_id"], e["label"], e["seq"]) for e in page] == [
        ("d2", "speech", i) for i in range(5)
    ]
    assert store.events(EventQuery(label="nothing"))[0] == []
    with pytest.raises(QueryError, match="limit"):
        store.events(EventQuery(limit=0))


def test_registry_status_telemetry_replies_and_retention(store: Store) -> None:
    store.write([make_batch("d1", BOOT, [0])])
    store.write(
        [],
        statuses=[StatusV1(device_id="d1", state="online", boot_id=BOOT, version="0.1.0")],
        telemetry=[make_telemetry("d1", BOOT, fps=29.5, inf_ms=1.25)],
    )
    d = store.device("d1")
    assert d is not None
    assert (d["state"], d["version"], d["events"]) == ("online", "0.1.0", 1)
    assert d["telemetry"]["streams"]["cam0"]["fps_processed"] == 29.5
    tel = store.telemetry("d1", since=0)
    assert [(t["fps"], t["inference_ms"]) for t in tel] == [(29.5, 1.25)]
    store.add_command("c1", "d1", "config", {"threshold": 0.7})
    store.write(
        [], replies=[Reply("d1", "config", CommandReplyV1(id="c1", command="config", ok=True))]
    )
    (c,) = store.commands("d1")
    assert (c["id"], c["ok"], c["args"]) == ("c1", True, {"threshold": 0.7})
    counts = store.label_counts(since=0, bucket_s=60)
    assert sum(c["count"] for c in counts) == 1
    assert store.prune(datetime.now(UTC).timestamp() + 1) == 1
    assert store.count_events() == 0


def test_the_hubs_secret_is_made_once_and_shared(store: Store) -> None:
    """``hub_meta``: the first ask makes it, later asks (any worker, after a restart) read it."""
    first = store.secret("client_id")
    assert len(first) == 64 and int(first, 16) >= 0
    assert store.secret("client_id") == first
    assert store.secret("another") != first
    again = open_store(store.url)
    try:
        assert again.secret("client_id") == first
    finally:
        again.close()


def test_unsupported_url_says_what_works(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"sqlite:///hub\.db"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/missing/hub.db")


def _region_batch(device: str) -> EventBatchV1:
    """A track's start in a zone, its enter, a line crossing and its exit (issue 12)."""
    b = make_batch(device, BOOT, range(4))
    fields: list[dict[str, object]] = [
        {"phase": "start", "zones": ["driveway"]},
        {"phase": "enter", "zones": ["driveway"], "zone": "driveway"},
        {"phase": "cross", "zones": [], "line": "gate", "direction": "out"},
        {"phase": "exit", "zones": [], "zone": "driveway"},
    ]
    events = [
        EventV1.model_validate({**e.model_dump(), **f})
        for e, f in zip(b.events, fields, strict=True)
    ]
    return EventBatchV1(device_id=device, boot_id=BOOT, events=events)


def test_zones_enter_exit_and_crossings_are_stored_and_served(store: Store) -> None:
    store.write([_region_batch("d1")])
    page, _ = store.events(EventQuery(device="d1", order="asc"))
    got = [(e["phase"], e["zones"], e["zone"], e["line"], e["direction"]) for e in page]
    assert got == [
        ("start", ["driveway"], None, None, None),
        ("enter", ["driveway"], "driveway", None, None),
        ("cross", [], None, "gate", "out"),
        ("exit", [], "driveway", None, None),
    ]
    live, _ = store.events_after(0, 10)
    assert [e["zone"] for e in live] == [None, "driveway", None, "driveway"]


def test_migration_4_keeps_the_events_stored_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub at schema 3 upgrades in place: old rows read back with no zones."""
    from cloud_sync.hub.db import engine

    url = f"sqlite:///{tmp_path}/old.db"
    old = open_store(url)
    monkeypatch.setattr(engine, "MIGRATIONS", engine.MIGRATIONS[:3])
    assert old.migrate() == 3
    t = datetime.now(UTC).timestamp()
    with old._tx() as cur:
        cur.execute(
            "INSERT INTO events (id, device_id, boot_id, seq, stream, kind, label, score, phase,"
            " started_at, ts, box, track_id, model_name, model_version, model_sha256,"
            " latency_ms, received_at) VALUES (?, 'd1', ?, 0, 'cam0', 'vision', 'face', 0.5,"
            " 'start', ?, ?, NULL, 1, 'm', '1', 'abcdef', 1.0, ?)",
            (str(uuid.uuid4()), BOOT, t, t, t),
        )
    old.close()
    monkeypatch.undo()
    new = open_store(url)
    assert new.migrate() == 6
    new.write([_region_batch("d2")])
    page, _ = new.events(EventQuery(order="asc"))
    assert [(e["device_id"], e["zones"], e["zone"]) for e in page][:2] == [
        ("d1", None, None),
        ("d2", ["driveway"], None),
    ]
    new.close()


def test_migration_5_keeps_the_events_stored_before_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub at schema 4 upgrades in place (both engines): old rows read back with no
    snapshots, and the new snapshot index works on them."""
    from cloud_sync.hub.db import engine

    old = open_store(db_url)
    monkeypatch.setattr(engine, "MIGRATIONS", engine.MIGRATIONS[:4])
    assert old.migrate() == 4
    t = datetime.now(UTC).timestamp()
    eid = str(uuid.uuid4())
    with old._tx() as cur:
        cur.execute(
            old._sql(
                "INSERT INTO events (id, device_id, boot_id, seq, stream, kind, label, score,"
                " phase, started_at, ts, box, track_id, model_name, model_version,"
                " model_sha256, latency_ms, received_at) VALUES (?, 'd1', ?, 0, 'cam0',"
                " 'vision', 'face', 0.5, 'start', ?, ?, NULL, 1, 'm', '1', 'abcdef', 1.0, ?)"
            ),
            (eid, BOOT, t, t, t),
        )
    old.close()
    monkeypatch.undo()
    new = open_store(db_url)
    assert new.migrate() == 6
    page, _ = new.events(EventQuery(order="asc"))
    assert [(e["id"], e["snapshots"], e["snapshots_stored"]) for e in page] == [(eid, None, [])]
    ref = new.event_ref(eid)
    assert ref is not None and ref.track_id == 1 and new.snapshots_of(ref) == []
    assert new.snapshot_totals() == (0, 0)
    new.close()
