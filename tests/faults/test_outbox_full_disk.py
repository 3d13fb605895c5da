"""issue 10 cases 5 and 10: the outbox on a real, small tmpfs that fills up while appending."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from cloud_sync.outbox import Outbox, OutboxError
from edge.events import uuid7
from tests.support.publisher_proc import make_events
from tests.support.tmpfs import fill, tmpfs


def test_full_disk_raises_counts_turns_health_red_and_recovers_without_seq_reuse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 10 case 10: a full disk under the outbox lost 493 events with no seq and no
    counter, health 200, and "cannot rollback - no transaction is active" hid the cause."""
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        ob = Outbox(mnt / "outbox.db", "cam1", uuid7(), state_path=mnt / "state.json")
        try:
            committed: list[int] = []
            for _ in range(20):
                ob.append(make_events(10))
                committed.append(ob.stats().next_seq)
            filler = fill(mnt)
            failures = 0
            with caplog.at_level(logging.ERROR):
                for _ in range(200):
                    try:
                        ob.append(make_events(10))
                    except OutboxError as exc:
                        failures += 1
                        assert "outbox.db" in str(exc) and "full" in str(exc), exc
            assert failures > 0
            assert "no transaction is active" not in caplog.text
            st = ob.stats()
            assert st.append_failures == failures and st.events_lost == 10 * failures
            h = ob.health()
            assert not h.ok and not h.fatal and h.reason and "full" in h.reason
            filler.unlink()  # space is freed: appends work again
            before = ob.stats().next_seq
            assert ob.append(make_events(5)) == 5
            assert ob.health().ok
            with sqlite3.connect(mnt / "outbox.db") as c:
                seqs = [r[0] for r in c.execute("SELECT seq FROM events ORDER BY seq")]
                ids = [r[0] for r in c.execute("SELECT json_extract(payload, '$.id') FROM events")]
            assert seqs == sorted(set(seqs)) and len(ids) == len(set(ids))
            assert seqs[-5:] == list(range(before, before + 5))  # after the burnt seqs, no reuse
            assert set(range(200)) <= set(seqs)  # everything committed before the fill is there
        finally:
            ob.close()
