"""The outbox on a real SQLite file: seq across restarts, ack, replay order, when-full policies."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from cloud_sync.outbox import Outbox, batch_payload
from cloud_sync.schema import EventBatchV1
from edge.events import Event, ModelRef, uuid7

MODEL = ModelRef("m", "1", "abcdef0123456789")


def events(n: int, label: str = "face") -> list[Event]:
    return [
        Event("cam0", "vision", label, 0.5, "start", 1.7e9, 1.7e9 + i, MODEL, box=(0, 0, 1, 1))
        for i in range(n)
    ]


def test_seq_survives_restart_and_boot_id_changes(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    boot1, boot2 = uuid7(), uuid7()
    with Outbox(db, "dev1", boot1) as ob:
        assert ob.append(events(3)) == 3
        ob.ack([(0, 1)])
    with Outbox(db, "dev1", boot2) as ob:
        assert ob.append(events(2)) == 2
        rows = ob.read(-1, 100)
    # ground truth: seq 0,1 acked and deleted; 2 from boot 1; 3,4 continue after the restart
    assert [r.seq for r in rows] == [2, 3, 4]
    assert [r.boot_id for r in rows] == [boot1, boot2, boot2]
    assert json.loads(rows[1].payload)["seq"] == 3
    assert json.loads(rows[1].payload)["boot_id"] == boot2


def test_batch_payload_is_a_valid_event_batch(tmp_path: Path) -> None:
    boot = uuid7()
    with Outbox(tmp_path / "o.db", "dev1", boot) as ob:
        src = events(5)
        ob.append(src)
        rows = ob.read(-1, 10)
        batch = EventBatchV1.model_validate_json(batch_payload("dev1", boot, rows))
    assert [e.seq for e in batch.events] == [0, 1, 2, 3, 4]
    assert [e.id for e in batch.events] == [e.id for e in src]
    assert batch.events[0].box == [0.0, 0.0, 1.0, 1.0]


def test_read_after_cursor_and_ack_ranges(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", "dev1", uuid7()) as ob:
        ob.append(events(10))
        assert [r.seq for r in ob.read(3, 4)] == [4, 5, 6, 7]
        assert ob.ack([(0, 2), (5, 6)]) == 5
        assert ob.ack([(0, 2)]) == 0  # a repeated PUBACK deletes nothing twice
        assert [r.seq for r in ob.read(-1, 100)] == [3, 4, 7, 8, 9]
        assert ob.stats().depth == 5


def test_drop_oldest_keeps_newest_and_counts(tmp_path: Path) -> None:
    one = len(events(1)[0].to_json().__repr__())  # ~ size of one payload, for a small bound
    with Outbox(tmp_path / "o.db", "dev1", uuid7(), max_bytes=one * 20) as ob:
        for _ in range(10):
            ob.append(events(5))
        st = ob.stats()
        kept = [r.seq for r in ob.read(-1, 1000)]
    assert st.dropped > 0 and st.rejected == 0
    assert st.bytes <= one * 20
    # ground truth: 50 events were appended; the survivors are the newest, contiguous up to 49
    assert kept[-1] == 49 and kept == list(range(kept[0], 50))
    assert st.dropped == 50 - len(kept)


def test_reject_new_refuses_and_counts_without_using_seq(tmp_path: Path) -> None:
    one = len(events(1)[0].to_json().__repr__())
    with Outbox(
        tmp_path / "o.db", "dev1", uuid7(), max_bytes=one * 20, when_full="reject_new"
    ) as ob:
        accepted = sum(ob.append(events(5)) for _ in range(10))
        st = ob.stats()
        kept = [r.seq for r in ob.read(-1, 1000)]
        ob.ack([(0, 10_000)])
        assert ob.append(events(1)) == 1  # room again after the acks
    assert st.rejected == 50 - accepted and st.dropped == 0
    assert kept == list(range(accepted))  # the oldest stay, seq has no gap
    assert st.next_seq == accepted


def test_concurrent_append_and_ack(tmp_path: Path) -> None:
    """The pipeline thread appends while the network thread reads and acks."""
    with Outbox(tmp_path / "o.db", "dev1", uuid7(), max_bytes=1 << 30) as ob:
        seen: list[int] = []
        stop = threading.Event()

        def consumer() -> None:
            cursor = -1
            while not stop.is_set() or ob.stats().depth:
                rows = ob.read(cursor, 50)
                if rows:
                    seen.extend(r.seq for r in rows)
                    cursor = rows[-1].seq
                    ob.ack([(rows[0].seq, rows[-1].seq)])

        t = threading.Thread(target=consumer)
        t.start()
        for _ in range(100):
            ob.append(events(10))
        stop.set()
        t.join(30)
        assert seen == list(range(1000))
        assert ob.stats().depth == 0


def test_unwritable_path_is_a_config_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="outbox"):
        Outbox(tmp_path / "f" / "o.db", "dev1", uuid7())
