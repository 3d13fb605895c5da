"""The outbox on a real SQLite file: seq across restarts, ack, replay order, when-full policies."""

from __future__ import annotations

import json
import threading
import time
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


def test_events_failing_the_wire_schema_are_dead_letters_not_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 10 case 1: an out-of-range score or a 200-character stream name would make the
    hub refuse the whole batch after the PUBACK deleted it; now it never enters a batch."""
    import sqlite3

    def bad() -> list[Event]:
        ev = events(4)
        ev[1].score = 1.5
        ev[2].stream = "s" * 200
        return ev

    boot = uuid7()
    with Outbox(tmp_path / "o.db", "dev1", boot) as ob:
        with caplog.at_level("ERROR"):
            assert ob.append(bad()) == 2
            assert ob.append(bad()) == 2
        rows = ob.read(-1, 100)
        st = ob.stats()
        reasons = dict(ob.dead_reasons)
    assert [r.seq for r in rows] == [0, 1, 2, 3]  # no seq spent on a refused event
    EventBatchV1.model_validate_json(batch_payload("dev1", boot, rows))  # the hub accepts it
    assert st.dead_letters == 4 and st.next_seq == 4
    assert reasons == {"score: less_than_equal": 2, "stream: string_too_long": 2}
    refused_logs = [r for r in caplog.records if "refused by the wire schema" in r.message]
    assert len(refused_logs) == 2  # once per reason, not once per event
    with sqlite3.connect(tmp_path / "o.db") as c:
        dead = c.execute("SELECT reason, payload FROM dead_letters ORDER BY id").fetchall()
    assert [d[0] for d in dead] == ["score: less_than_equal", "stream: string_too_long"] * 2
    assert json.loads(dead[0][1])["score"] == 1.5  # the raw event, kept for an operator


def test_hub_delivery_keeps_puback_rows_until_the_hub_acks(tmp_path: Path) -> None:
    """issue 10 case 9: a PUBACK marks rows delivered; only a hub ack deletes them."""
    with Outbox(tmp_path / "o.db", "dev1", uuid7()) as ob:
        ob.append(events(6))
        assert ob.mark_delivered([(0, 3)]) == 4
        assert [r.seq for r in ob.read(-1, 100)] == [4, 5]  # not sent again on the next fill
        st = ob.stats()
        assert st.depth == 6 and st.delivered_unacked == 4
        assert ob.ack([(0, 1)]) == 2
        st = ob.stats()
        assert st.depth == 4 and st.delivered_unacked == 2
        # an overdue row is handed back once, then waits twice as long (backoff)
        ob.mark_delivered([(2, 3)], when=time.time() - 100)
        assert [r.seq for r in ob.take_overdue(10.0, 100)] == [2, 3]
        assert ob.take_overdue(10.0, 100) == []
        # after a reconnect, rows delivered within the window are replayed (acks were lost)
        assert ob.requeue_recent(time.time() - 60) == 2
        assert [r.seq for r in ob.read(-1, 100)] == [2, 3, 4, 5]


def test_full_database_raises_typed_error_counts_and_keeps_seqs_unique(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 10 cases 5 and 10: SQLITE_FULL (what a full disk gives) used to surface as
    "cannot rollback - no transaction is active" and lose the events uncounted."""
    from cloud_sync.outbox import OutboxError

    with Outbox(tmp_path / "o.db", "dev1", uuid7()) as ob:
        ob.append(events(3))
        pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
        ob._db.execute(f"PRAGMA max_page_count={pages}")  # no room for one more page
        with caplog.at_level("ERROR"), pytest.raises(OutboxError, match=r"o\.db.*full"):
            for _ in range(50):
                ob.append(events(20))
        assert "no transaction is active" not in caplog.text
        st = ob.stats()
        assert st.append_failures == 1 and st.events_lost == 20
        h = ob.health()
        assert not h.ok and h.reason and "full" in h.reason and not h.fatal
        ob._db.execute("PRAGMA max_page_count=1073741823")  # space freed
        assert ob.append(events(2)) == 2
        assert ob.health().ok
        seqs = [r.seq for r in ob.read(-1, 10_000)]
    assert seqs == sorted(set(seqs)) and seqs[-1] >= 3 + 20  # the lost events' seqs are burnt


def test_edge_outbox_cli_reads_a_live_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edge outbox` opens read-only beside a writer that has the file open (the daemon)."""
    from edge.cli.main import main

    with Outbox(tmp_path / "outbox.db", "dev1", uuid7(), state_path=tmp_path / "state.json") as ob:
        ev = events(5)
        ev[4].score = 2.0
        ob.append(ev)
        ob.mark_delivered([(0, 1)])
        assert main(["outbox", "--data-dir", str(tmp_path), "stats", "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["depth"] == 4 and st["next_seq"] == 4 and st["delivered_unacked"] == 2
        assert st["dead_letters"] == 1 and st["epoch"] == 1 and st["seq_reserved"] >= 4
        assert main(["outbox", "--data-dir", str(tmp_path), "peek", "-n", "2", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["seq"] for r in rows] == [0, 1] and rows[0]["delivered"] is not None
        assert main(["outbox", "--data-dir", str(tmp_path), "dead-letters"]) == 0
        out = capsys.readouterr().out
        assert "score" in out and '"score":2.0' in out
        ob.append(events(1))  # the writer is not blocked by the reader
    conf = tmp_path / "device.toml"
    conf.write_text(
        f'device_id = "dev1"\ndata_dir = "{tmp_path}"\n[[streams]]\nname = "cam0"\n'
        'source = "x.avi"\ndetectors = ["faces"]\n[detectors.faces]\n'
        'model = "blazeface-short"\n[sync]\n[[sinks]]\ntype = "mqtt"\n'
    )
    assert main(["outbox", "--config", str(conf), "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["next_seq"] == 5
    assert main(["outbox", "--data-dir", str(tmp_path / "nowhere"), "stats"]) == 2
    assert "no outbox here" in capsys.readouterr().err


def test_two_outbox_objects_on_one_file_never_share_a_seq(tmp_path: Path) -> None:
    """A sink rebuilt by a reload opens the file while the old one is still closing."""
    old = Outbox(tmp_path / "outbox.db", "dev1", uuid7())
    old.append(events(3))
    new = Outbox(tmp_path / "outbox.db", "dev1", uuid7())
    old.append(events(2))  # the old sink commits a late frame
    new.append(events(2))
    old.close()
    new.append(events(1))
    seqs = [r.seq for r in new.read(-1, 100)]
    new.close()
    assert seqs == list(range(8))
    with Outbox(tmp_path / "outbox.db", "dev1", uuid7()) as again:
        assert not again.outbox_reset and again.seq_start == 8 and again.epoch == 3
