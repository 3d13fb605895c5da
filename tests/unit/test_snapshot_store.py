"""The snapshot store (``cloud_sync.outbox.snapshots``): what it commits, what it refuses,
its size bound, and its files going wrong at open."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.schema import TelemetryV1, decode_snapshot
from cloud_sync.telemetry import Telemetry
from edge.config import SyncConfig
from edge.events import uuid7
from edge.wire import MAX_SNAPSHOT_BYTES
from tests.support.snapshot_data import jpeg, snapshot


@pytest.fixture()
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snapshots.db", "cam1")


def test_put_commits_the_wire_message_byte_exact(store: SnapshotStore, tmp_path: Path) -> None:
    s = snapshot(kind="best_crop")
    assert store.put(s)
    with sqlite3.connect(tmp_path / "snapshots.db") as c:  # committed: another connection sees it
        ((event_id, kind, message),) = c.execute("SELECT event_id, kind, message FROM snapshots")
    header, body = decode_snapshot(message)
    assert (event_id, kind) == (s.event_id, "best_crop")
    assert body == s.jpeg and header.event_id == s.event_id and header.device_id == "cam1"
    assert (header.width, header.height, header.bytes) == (s.width, s.height, len(s.jpeg))
    assert header.box == [0.1, 0.2, 0.5, 0.6] and abs(header.ts.timestamp() - s.ts) < 1e-3
    st = store.stats()
    assert (st.queued, st.bytes) == (1, len(message))
    [row] = store.read(-1, 10)
    assert row.message == message and store.read(row.id, 10) == []
    assert store.delete([row.id]) == 1
    st = store.stats()
    assert (st.queued, st.bytes, st.sent) == (0, 0, 1)


def test_one_event_and_kind_is_stored_once(store: SnapshotStore) -> None:
    s = snapshot()
    assert store.put(s) and not store.put(replace(s, jpeg=jpeg(seed=3)))
    assert store.put(replace(s, kind="start_crop"))  # another kind of the same event
    st = store.stats()
    assert (st.queued, st.duplicates, st.refused) == (2, 1, 0)
    assert decode_snapshot(store.read(-1, 1)[0].message)[1] == s.jpeg  # the first one kept


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"jpeg": b"\xff\xd8\xff" + b"\0" * (MAX_SNAPSHOT_BYTES + 1) + b"\xff\xd9"},
            "bytes: less_than_equal",
        ),
        ({"jpeg": PNG}, "not a JPEG (no SOI / EOI markers)"),
        ({"jpeg": jpeg()[:-2]}, "not a JPEG (no SOI / EOI markers)"),  # truncated
        ({"jpeg": b""}, "bytes: greater_than_equal"),
        ({"event_id": "../../etc/passwd"}, "event_id: string_pattern_mismatch"),
        ({"event_id": ""}, "event_id: string_pattern_mismatch"),
        ({"event_id": "A" * 100_000}, "event_id: string_pattern_mismatch"),
        ({"kind": "thumbnail"}, "kind: literal_error"),
        ({"stream": "a/b\x00"}, "stream: string_pattern_mismatch"),
        ({"width": 0}, "width: greater_than_equal"),
        ({"height": 10**9}, "height: less_than_equal"),
        ({"ts": math.nan}, None),  # datetime.fromtimestamp refuses NaN
        ({"ts": 1e300}, None),
        ({"box": (0.1, 0.2, 1.5, 0.6)}, "box.2: less_than_equal"),
        ({"box": (math.inf, 0.2, 0.3, 0.6)}, None),
        ({"box": (0.1, 0.2)}, "box: too_short"),
        # not even the types the dataclass names (a producer bug must not crash the sink)
        ({"jpeg": None}, None),
        ({"jpeg": "\xff\xd8\xff not bytes \xff\xd9"}, None),
        ({"width": True}, "width: int_type"),
        ({"ts": "yesterday"}, None),
        ({"event_id": None}, "event_id: string_type"),
        ({"kind": None}, "kind: literal_error"),
    ],
)
def test_hostile_snapshots_are_refused_counted_and_logged_once_per_reason(
    store: SnapshotStore, change: dict[str, object], reason: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    bad = replace(snapshot(), **change)  # type: ignore[arg-type]  # hostile values on purpose
    with caplog.at_level(logging.ERROR):
        assert not store.put(bad) and not store.put(bad)
    st = store.stats()
    assert (st.queued, st.refused, st.lost) == (0, 2, 0)
    assert list(st.refused_reasons.values()) == [2]
    if reason is not None:
        assert list(st.refused_reasons) == [reason]
    assert caplog.text.count("snapshot refused") == 1  # once per reason
    assert store.read(-1, 10) == []
    assert store.put(snapshot())  # and the store goes on


def test_refusal_reasons_stay_few(store: SnapshotStore) -> None:
    for i in range(100):  # each a different stream name: reasons must not grow with values
        store.put(replace(snapshot(), stream=f"bad stream {i}/"))
    for w in range(9000, 9100):
        store.put(replace(snapshot(), width=w))
    st = store.stats()
    assert st.refused == 200 and len(st.refused_reasons) <= 32


def test_the_size_bound_drops_the_oldest_snapshots_first_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "snapshots.db"
    store = SnapshotStore(path, "cam1", max_bytes=200_000)
    kept = [snapshot(seed=i, width=320, height=240) for i in range(8)]  # ~70 KB each
    for s in kept:
        assert store.put(s)
    st = store.stats()
    assert st.bytes <= 200_000 and st.queued == 2 and st.dropped == 6
    left = [decode_snapshot(r.message)[0].event_id for r in store.read(-1, 10)]
    assert left == [s.event_id for s in kept[-2:]]  # the newest stay
    store.close()
    store = SnapshotStore(path, "cam1", max_bytes=200_000)  # lifetime totals survive a restart
    assert store.stats().queued == 2 and store.stats().dropped == 0
    store.put(snapshot(seed=9, width=320, height=240))
    store.close()
    with sqlite3.connect(path) as c:
        meta = dict(c.execute("SELECT key, value FROM meta"))
    assert int(meta["dropped_total"]) == 7


def test_a_snapshot_bigger_than_the_whole_bound_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s.db", "cam1", max_bytes=1000)
    assert not store.put(snapshot())
    assert store.stats().refused_reasons == {"bigger than sync.outbox.snapshot_max_bytes": 1}


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000, b"\0" * 8192],
)
def test_a_damaged_file_is_moved_aside_and_recreated(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snapshots.db"
    path.write_bytes(garbage)
    with caplog.at_level(logging.ERROR):
        store = SnapshotStore(path, "cam1")
    aside = sorted(tmp_path.glob("snapshots.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage  # kept, never deleted
    assert aside[0].name in caplog.text and str(path) in caplog.text
    assert store.stats().reset and "moved aside" in (store.health().reason or "")
    assert store.health().ok
    assert store.put(snapshot()) and store.stats().queued == 1


def test_a_store_with_damaged_pages_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "snapshots.db"
    store = SnapshotStore(path, "cam1")
    for i in range(6):
        store.put(snapshot(seed=i, width=320, height=240))
    store.close()
    raw = bytearray(path.read_bytes())
    raw[4096 * 3 : 4096 * 6] = b"\xa5" * (4096 * 3)  # b-tree pages overwritten
    path.write_bytes(bytes(raw))
    store = SnapshotStore(path, "cam1")
    assert store.stats().reset and store.stats().queued == 0
    assert len(list(tmp_path.glob("snapshots.db.corrupt-*"))) == 1
    assert store.put(snapshot())


def test_a_missing_directory_and_file_are_created(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "new" / "dir" / "snapshots.db", "cam1")
    assert store.put(snapshot()) and (tmp_path / "new" / "dir" / "snapshots.db").exists()


def test_a_store_that_cannot_open_counts_lost_and_is_red_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "snapshots.db"
    path.mkdir()  # a directory where the file should be: cannot open, is not "damage"
    store = SnapshotStore(path, "cam1")
    assert not store.put(snapshot())
    st = store.stats()
    assert (st.lost, st.queued) == (1, 0) and not list(tmp_path.glob("*.corrupt-*"))
    h = store.health()
    assert not h.ok and not h.fatal and "events are not affected" in (h.reason or "")
    assert h.dependency  # the watchdog is still fed: a restart would not fix the disk
    path.rmdir()
    store._last_open_try = time.monotonic() - 60  # the retry is due
    assert store.put(snapshot()) and store.health().ok


def test_a_closed_store_never_reopens_its_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots.db", "cam1")
    store.close()
    store._last_open_try = time.monotonic() - 60
    assert not store.put(snapshot()) and store.stats().lost == 1
    assert store._db is None and store.read(-1, 10) == [] and store.delete([1]) == 0


def test_config_defaults_and_the_path_stays_in_the_data_dir() -> None:
    o = SyncConfig().outbox
    assert o.snapshot_path == Path("snapshots.db") and o.snapshot_max_bytes == 16 * 1024 * 1024
    for bad in ("/var/tmp/snapshots.db", "../snapshots.db", "a/../../b.db"):
        with pytest.raises(ValidationError, match="relative to the data dir"):
            SyncConfig.model_validate({"outbox": {"snapshot_path": bad}})
    with pytest.raises(ValidationError, match="greater than or equal"):
        SyncConfig.model_validate({"outbox": {"snapshot_max_bytes": 1000}})
    assert SyncConfig.model_validate({"outbox": {"snapshot_path": "pics/s.db"}})


def test_telemetry_carries_the_snapshot_figures_and_stays_backward_compatible(
    store: SnapshotStore,
) -> None:
    store.put(snapshot())
    store.put(replace(snapshot(), jpeg=PNG))
    t = Telemetry("cam1", uuid7())
    raw = t.payload(None, lambda: None, 0, store.stats)  # type: ignore[arg-type,return-value]  # no outbox here
    assert raw is not None
    got = TelemetryV1.model_validate_json(raw)
    assert got.snapshots is not None
    assert (got.snapshots.queued, got.snapshots.refused, got.snapshots.sent) == (1, 1, 0)
    assert got.snapshots.bytes == store.stats().bytes
    old = TelemetryV1.model_validate_json(raw).model_dump(mode="json", exclude={"snapshots"})
    assert TelemetryV1.model_validate(old).snapshots is None  # an older device's payload

    def broken() -> object:
        raise sqlite3.OperationalError("disk I/O error (injected)")

    raw = t.payload(None, lambda: None, 0, broken)  # type: ignore[arg-type,return-value]
    assert raw is not None
    got = TelemetryV1.model_validate_json(raw)
    assert got.snapshots is None and any("snapshots.stats()" in e for e in got.errors)


def test_edge_outbox_shows_the_snapshots_beside_a_live_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud_sync.outbox import Outbox
    from edge.cli.main import main

    d = ["outbox", "--data-dir", str(tmp_path)]
    with Outbox(tmp_path / "outbox.db", "cam1", uuid7(), state_path=tmp_path / "state.json"):
        assert main([*d, "stats", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["snapshots"] is None  # none taken yet
        with SnapshotStore(tmp_path / "snapshots.db", "cam1", max_bytes=60_000) as store:
            shots = [snapshot(seed=i) for i in range(4)]  # ~18 KB each: the first one drops
            for s in shots:
                store.put(s)
            store.put(replace(snapshot(), jpeg=PNG))  # refused: counted at the next commit
            store.put(snapshot(seed=5))
            assert main([*d, "stats", "--json"]) == 0
            st = json.loads(capsys.readouterr().out)
            assert st["depth"] == 0  # the events' figures are all still there
            sn = st["snapshots"]
            assert sn["queued"] == store.stats().queued == 3 and sn["bytes"] == store.stats().bytes
            assert (sn["dropped_total"], sn["refused_total"]) == (2, 1)
            assert main([*d, "stats"]) == 0
            assert "snapshots.queued" in capsys.readouterr().out
            assert main([*d, "snapshots", "--json", "-n", "2"]) == 0
            rows = json.loads(capsys.readouterr().out)
            assert [r["event_id"] for r in rows] == [s.event_id for s in shots[2:4]]
            assert main([*d, "snapshots"]) == 0
            assert "start" in capsys.readouterr().out
        (tmp_path / "snapshots.db").write_bytes(b"garbage" * 1000)
        for side in ("-wal", "-shm"):
            (tmp_path / f"snapshots.db{side}").unlink(missing_ok=True)
        assert main([*d, "stats", "--json"]) == 0  # a damaged store costs no event figure
        st = json.loads(capsys.readouterr().out)
        assert "not a database" in st["snapshots"]["error"] and st["next_seq"] == 0
        assert main([*d, "snapshots"]) == 2
        assert "snapshots.db" in capsys.readouterr().err
