"""Snapshot storage and intake on both engines (SQLite: files; PostgreSQL: blobs, and
files when given a folder): store once, serve byte-exact, retention by age and size,
the wait for a late event, refusals counted, a store that fails and recovers."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import pytest

from cloud_sync.hub.db import Store
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.snapshots.intake import SnapshotConfig, SnapshotIntake
from cloud_sync.hub.snapshots.storage import SnapshotStore, default_dir, relpath
from cloud_sync.hub.snapshots.validate import SnapAccepted, check
from cloud_sync.schema import EventBatchV1
from tests.support.snapshots import jpeg, message, track

DEV = "cam-1"
BOOT = str(uuid.uuid4())
PICS = [jpeg(n) for n in ("astronaut", "camera", "chelsea", "coffee")]


def _events(store: Store, track_id: int = 1, seq0: int = 0) -> tuple[str, str]:
    start, end = track(DEV, BOOT, track_id, seq0)
    store.write([EventBatchV1(device_id=DEV, boot_id=BOOT, events=[start, end])])
    return start.id, end.id


def _snap(event_id: str, kind: str, data: bytes, device: str = DEV) -> SnapAccepted:
    got = check(device, message(device, event_id, kind, data))
    assert isinstance(got, SnapAccepted)
    return got


@pytest.fixture(params=["files", "auto"])
def snaps(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> SnapshotStore:
    d = tmp_path / "snaps" if request.param == "files" else default_dir(store.url, None)
    return SnapshotStore(store, d)


def test_a_snapshot_is_stored_once_and_read_back_byte_exact(
    store: Store, snaps: SnapshotStore
) -> None:
    start, _end = _events(store)
    ref = store.event_ref(start)
    assert ref is not None
    s = _snap(start, "start", PICS[0])
    assert snaps.put(s.header, s.jpeg, ref) == "stored"
    assert snaps.put(s.header, s.jpeg, ref) == "duplicate"
    rows = store.snapshots_of(ref)
    assert [(r.kind, r.bytes, r.sha256) for r in rows] == [
        ("start", len(PICS[0]), hashlib.sha256(PICS[0]).hexdigest())
    ]
    assert snaps.read(rows[0]) == PICS[0]
    if snaps.dir is not None:  # the file is named by the UUID and the kind, nothing else
        assert rows[0].path == relpath(start, "start") == f"{start[:2]}/{start}.start.jpg"
        files = sorted(p.relative_to(snaps.dir) for p in snaps.dir.rglob("*") if p.is_file())
        assert files == [Path(rows[0].path)]  # no temporary file left behind
    else:
        assert rows[0].path is None and store.url.startswith("postgres")


def test_the_path_is_built_from_the_uuid_and_the_kind_only() -> None:
    for bad in ("../../etc/passwd", "a/b", ""):
        with pytest.raises(ValueError):
            relpath(bad, "start")
    with pytest.raises(ValueError):
        relpath(str(uuid.uuid4()), "../x")


def test_a_damaged_or_missing_file_is_not_served(store: Store, tmp_path: Path) -> None:
    snaps = SnapshotStore(store, tmp_path / "snaps")
    start, end = _events(store)
    for eid, kind, pic in ((start, "start", PICS[0]), (end, "best", PICS[1])):
        s = _snap(eid, kind, pic)
        ref = store.event_ref(eid)
        assert ref is not None
        snaps.put(s.header, s.jpeg, ref)
    rows = {r.kind: r for r in store.snapshots_of(store.event_ref(start))}  # type: ignore[arg-type]
    (tmp_path / "snaps" / relpath(start, "start")).write_bytes(PICS[0][:-1] + b"\x00")
    (tmp_path / "snaps" / relpath(end, "best")).unlink()
    assert snaps.read(rows["start"]) is None
    assert snaps.read(rows["best"]) is None
    assert snaps.damaged == 2


def test_retention_deletes_by_age_then_oldest_first_by_size(
    store: Store, snaps: SnapshotStore
) -> None:
    ids = []
    for i in range(4):
        start, _ = _events(store, track_id=i, seq0=2 * i)
        ref = store.event_ref(start)
        assert ref is not None
        s = _snap(start, "start", PICS[i])
        snaps.put(s.header, s.jpeg, ref)
        ids.append(start)
        time.sleep(0.01)  # distinct ``created``
    now = time.time()
    assert snaps.sweep(None, None) == (0, 0)
    assert snaps.sweep(3600.0, None, now=now) == (0, 0)  # all young
    # the three newest fit in the size limit exactly: only the oldest goes
    limit = sum(len(p) for p in PICS[1:])
    assert snaps.sweep(None, limit, now=now) == (0, 1)
    assert store.snapshot_totals() == (3, limit)
    assert snaps.sweep(None, limit - 1, now=now) == (0, 1)  # one byte over: the next oldest
    left = [r.event_id for r in store.snapshots_oldest(10)]
    assert left == ids[2:]
    assert snaps.sweep(60.0, None, now=now + 120) == (2, 0)  # everything is now too old
    assert store.snapshot_totals() == (0, 0)
    if snaps.dir is not None:
        assert not [p for p in snaps.dir.rglob("*") if p.is_file()]


def test_the_api_sees_what_the_device_sent_and_what_the_hub_holds(
    store: Store, snaps: SnapshotStore
) -> None:
    from cloud_sync.hub.db import EventQuery

    _start, end = _events(store)
    s = _snap(end, "best_crop", PICS[2])
    ref = store.event_ref(end)
    assert ref is not None
    snaps.put(s.header, s.jpeg, ref)
    page, _ = store.events(EventQuery(order="asc"))
    assert [(e["snapshots"], e["snapshots_stored"]) for e in page] == [
        (["start", "start_crop"], []),
        (["best", "best_crop"], ["best_crop"]),
    ]


def _intake(store: Store, tmp: Path, **over: object) -> tuple[SnapshotIntake, HubMetrics]:
    m = HubMetrics()
    cfg = SnapshotConfig(dir=tmp / "snaps", **over)  # type: ignore[arg-type]
    return SnapshotIntake(cfg, store, m), m


def test_a_snapshot_before_its_event_waits_and_is_stored_when_it_comes(
    store: Store, tmp_path: Path
) -> None:
    intake, m = _intake(store, tmp_path, pending_s=30.0)
    start, end = track(DEV, BOOT, 5)
    intake.handle(DEV, message(DEV, start.id, "start", PICS[0]))
    intake.handle(DEV, message(DEV, start.id, "start", PICS[0]))  # resent while waiting
    assert len(intake.pending) == 1 and m.snapshots_pending == 1 and m.snapshots_waited == 1
    assert m.snapshots_duplicate == 1  # the resend
    assert m.snapshots_stored == 0
    intake.retry()
    assert len(intake.pending) == 1  # still no event
    store.write([EventBatchV1(device_id=DEV, boot_id=BOOT, events=[start, end])])
    intake.retry()
    assert len(intake.pending) == 0 and intake.pending.nbytes == 0
    assert m.snapshots_stored == 1 and not m.snapshots_rejected


def test_an_event_that_never_comes_is_refused_and_the_wait_is_bounded(
    store: Store, tmp_path: Path
) -> None:
    intake, m = _intake(store, tmp_path, pending_s=30.0, pending_items=2)
    for i in range(3):
        intake.handle(DEV, message(DEV, str(uuid.uuid4()), "best", PICS[i]))
    assert len(intake.pending) == 2
    assert m.snapshots_rejected == {"pending_full": 1}
    intake.retry(now=time.monotonic() + 31)
    assert len(intake.pending) == 0
    assert m.snapshots_rejected == {"pending_full": 1, "unknown_event": 2}
    big, _ = _intake(store, tmp_path, pending_bytes=len(PICS[0]) + 1)
    big.handle(DEV, message(DEV, str(uuid.uuid4()), "best", PICS[0]))
    big.handle(DEV, message(DEV, str(uuid.uuid4()), "best", PICS[1]))
    assert len(big.pending) == 1 and big.metrics.snapshots_rejected == {"pending_full": 1}


def test_another_devices_event_and_hostile_messages_are_counted(
    store: Store, tmp_path: Path
) -> None:
    intake, m = _intake(store, tmp_path)
    start, _ = _events(store)
    intake.handle("cam-2", message("cam-2", start, "start", PICS[0]))  # cam-1's event
    intake.handle(DEV, b"EWS1\x00\x02{}" + PICS[0])
    intake.handle(DEV, PICS[0])
    intake.handle(DEV, message("cam-2", start, "start", PICS[0]))  # header names another
    assert m.snapshots_rejected == {
        "event_device_mismatch": 1, "bad_header": 1, "not_snapshot": 1, "device_mismatch": 1,
    }  # fmt: skip
    intake.handle(DEV, message(DEV, start, "start", PICS[0]))
    assert m.snapshots_stored == 1 and intake.health().ok


def test_a_store_that_fails_is_red_counted_and_recovers(store: Store, tmp_path: Path) -> None:
    intake, m = _intake(store, tmp_path)
    (tmp_path / "snaps").write_text("a file where the folder should be")  # mkdir fails
    start, end = _events(store)
    intake.handle(DEV, message(DEV, start, "start", PICS[0]))
    h = intake.health()
    assert not h.ok and "snaps" in (h.reason or "")
    assert m.snapshots_rejected == {"store_failed": 1}
    assert store.snapshot_totals() == (0, 0)  # nothing indexed for the failed file
    (tmp_path / "snaps").unlink()
    intake.handle(DEV, message(DEV, end, "best", PICS[1]))
    assert intake.health().ok and m.snapshots_stored == 1


def test_a_full_disk_leaves_no_half_file_and_recovers(store: Store, tmp_path: Path) -> None:
    from tests.support.tmpfs import tmpfs

    big = jpeg("chelsea", 1920, 1080, quality=95)  # ~300 KiB: does not fit in 128 KiB
    with tmpfs(tmp_path / "small", "128k") as d:
        m = HubMetrics()
        intake = SnapshotIntake(SnapshotConfig(dir=d), store, m)
        start, end = _events(store)
        intake.handle(DEV, message(DEV, end, "best", big, width=1920, height=1080))
        assert m.snapshots_rejected == {"store_failed": 1}
        assert not intake.health().ok and "No space" in (intake.health().reason or "")
        assert [p for p in d.rglob("*") if p.is_file()] == []  # no half JPEG, no temp file
        assert store.snapshot_totals() == (0, 0)
        intake.handle(DEV, message(DEV, start, "start", PICS[0]))  # a small one fits
        assert m.snapshots_stored == 1 and intake.health().ok


def test_a_crash_before_the_rename_serves_nothing_and_a_resend_heals(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snaps = SnapshotStore(store, tmp_path / "snaps")
    start, _ = _events(store)
    ref = store.event_ref(start)
    assert ref is not None
    s = _snap(start, "start", PICS[0])

    def crash(self: Path, target: Path) -> Path:
        raise KeyboardInterrupt("killed between fsync and rename")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        snaps.put(s.header, s.jpeg, ref)
    monkeypatch.undo()
    assert [p for p in (tmp_path / "snaps").rglob("*") if p.is_file()] == []
    assert store.snapshots_of(ref) == []
    # a crash after the rename but before the index: the file is there, unindexed,
    # so nothing serves it; a resend replaces it atomically and indexes it
    final = tmp_path / "snaps" / relpath(start, "start")
    final.write_bytes(PICS[0][: len(PICS[0]) // 2])
    assert store.snapshots_of(ref) == []
    assert snaps.put(s.header, s.jpeg, ref) == "stored"
    assert final.read_bytes() == PICS[0]
    assert snaps.read(store.snapshots_of(ref)[0]) == PICS[0]


def test_a_database_outage_keeps_the_snapshot_waiting_then_stores_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud_sync.hub.errors import StoreError

    intake, m = _intake(store, tmp_path, pending_s=30.0)
    start, end = _events(store)

    def down(*_a: object) -> bool:
        raise StoreError("connection lost")  # what both engines call a database failure

    monkeypatch.setattr(store, "snapshot_insert", down)
    intake.handle(DEV, message(DEV, start, "start", PICS[0]))
    intake.handle(DEV, message(DEV, end, "best", PICS[1]))
    assert len(intake.pending) == 2 and not m.snapshots_rejected
    assert not intake.health().ok and "connection lost" in (intake.health().reason or "")
    intake.retry()
    assert len(intake.pending) == 2
    monkeypatch.undo()
    intake.retry()
    assert m.snapshots_stored == 2 and len(intake.pending) == 0 and intake.health().ok
    # an outage longer than the wait: refused as store_failed, not as an unknown event
    monkeypatch.setattr(store, "snapshot_insert", down)
    start2, _ = _events(store, track_id=2, seq0=2)
    intake.handle(DEV, message(DEV, start2, "start", PICS[2]))
    intake.retry(now=time.monotonic() + 31)
    assert m.snapshots_rejected == {"store_failed": 1} and len(intake.pending) == 0


def test_a_snapshot_waiting_when_the_hub_dies_is_stored_after_it_starts_again(
    store: Store, tmp_path: Path
) -> None:
    """The broker was acknowledged while it waited; the hub then died (nothing of the
    first intake is closed or flushed). A new intake on the same database holds it again
    and stores it when its event comes."""
    first, _ = _intake(store, tmp_path, pending_s=30.0)
    start, end = track(DEV, BOOT, 7)
    first.handle(DEV, message(DEV, start.id, "start", PICS[0]))
    first.handle(DEV, message(DEV, end.id, "best", PICS[1]))
    assert len(first.pending) == 2 and len(store.pending_all(10)) == 2
    del first  # killed: what it held in memory is gone
    again, m = _intake(store, tmp_path, pending_s=30.0)
    assert len(again.pending) == 2 and m.snapshots_pending == 2
    again.retry()
    assert len(again.pending) == 2  # still no event
    store.write([EventBatchV1(device_id=DEV, boot_id=BOOT, events=[start, end])])
    again.retry()
    assert m.snapshots_stored == 2 and len(again.pending) == 0 and not m.snapshots_rejected
    assert store.pending_all(10) == []  # nothing left to load at the next start
    ref = store.event_ref(start.id)
    assert ref is not None
    stored = {r.kind: again.store.read(r) for r in store.snapshots_of(ref)}
    assert stored == {"start": PICS[0], "best": PICS[1]}  # byte-exact after the restart


def test_what_waited_too_long_across_a_restart_is_refused_and_forgotten(
    store: Store, tmp_path: Path
) -> None:
    eid = str(uuid.uuid4())
    store.pending_put(eid, "best", DEV, message(DEV, eid, "best", PICS[0]), time.time() - 3600)
    intake, m = _intake(store, tmp_path, pending_s=30.0)
    assert len(intake.pending) == 1
    intake.retry()  # an hour old, the wait is 30 s: refused at once
    assert m.snapshots_rejected == {"unknown_event": 1} and store.pending_all(10) == []


def test_a_damaged_or_overflowing_kept_row_is_refused_at_start(
    store: Store, tmp_path: Path
) -> None:
    bad, ok1, ok2 = (str(uuid.uuid4()) for _ in range(3))
    now = time.time()
    store.pending_put(bad, "start", DEV, b"EWS1\x00\x02{}" + PICS[0], now - 3)  # bad header
    store.pending_put(ok1, "best", DEV, message(DEV, ok1, "best", PICS[1]), now - 2)
    store.pending_put(ok2, "best", DEV, message(DEV, ok2, "best", PICS[2]), now - 1)
    intake, m = _intake(store, tmp_path, pending_items=1)
    assert len(intake.pending) == 1  # the oldest good one
    assert m.snapshots_rejected == {"bad_header": 1, "pending_full": 1}
    assert [r[0] for r in store.pending_all(10)] == [ok1]


def test_a_database_down_while_it_waits_keeps_it_in_memory(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud_sync.hub.errors import StoreError

    def down(*_a: object) -> None:
        raise StoreError("connection lost")

    intake, m = _intake(store, tmp_path, pending_s=30.0)
    monkeypatch.setattr(store, "pending_put", down)
    start, end = track(DEV, BOOT, 8)
    intake.handle(DEV, message(DEV, start.id, "start", PICS[0]))
    assert len(intake.pending) == 1 and intake._unkept == 1
    h = intake.health()  # a crash now would lose it: not green
    assert not h.ok and "in memory only" in (h.reason or "") and "connection lost" in h.reason
    monkeypatch.undo()
    store.write([EventBatchV1(device_id=DEV, boot_id=BOOT, events=[start, end])])
    intake.retry()
    assert m.snapshots_stored == 1 and len(intake.pending) == 0
    assert intake.health().ok  # nothing at risk is left


def test_files_a_crash_left_unindexed_are_swept_and_nothing_else(
    store: Store, tmp_path: Path
) -> None:
    import os

    d = tmp_path / "snaps"
    intake, m = _intake(store, tmp_path)
    start, end = _events(store)
    intake.handle(DEV, message(DEV, start, "start", PICS[0]))  # indexed: kept
    kept = d / relpath(start, "start")
    lost = str(uuid.uuid4())  # killed between the rename and the index
    unindexed = d / relpath(lost, "best")
    unindexed.parent.mkdir(parents=True, exist_ok=True)
    unindexed.write_bytes(PICS[1])
    tmp = d / relpath(end, "best")  # killed before the rename: its temporary file
    tmp = tmp.with_name(f".{tmp.name}.4242.0badc0de.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(PICS[2][:100])
    young = d / relpath(str(uuid.uuid4()), "start")  # a write in progress, maybe
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(PICS[3])
    foreign = [d / start[:2] / "notes.txt", d / "README", d / start[:2] / "X.start.jpg"]
    for f in foreign:
        f.write_text("not the hub's")
    old = time.time() - 3600
    for f in (kept, unindexed, tmp, *foreign):
        os.utime(f, (old, old))
    intake.sweep()  # the first sweep looks for them (a start)
    assert m.snapshots_deleted["orphan"] == 2
    assert not unindexed.exists() and not tmp.exists()
    assert kept.exists() and young.exists() and all(f.exists() for f in foreign)
    ref = store.event_ref(start)
    assert ref is not None
    assert intake.store.read(store.snapshots_of(ref)[0]) == PICS[0]  # still served
    unindexed.write_bytes(PICS[1])
    os.utime(unindexed, (old, old))
    intake.sweep()  # within 6 h of the last look: not looked for again
    assert unindexed.exists() and m.snapshots_deleted["orphan"] == 2
    assert intake.store.sweep_orphans() == 1  # the next look finds it
