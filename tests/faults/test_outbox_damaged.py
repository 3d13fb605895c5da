"""issue 10 case 11: a damaged or lost outbox file. Seqs are never reused (the high-water
mark lives in state.json, outside the outbox), the reset is announced, a corrupt file is
moved aside (never deleted) and what can be read from it is salvaged."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_sync.outbox import Outbox
from edge.errors import ConfigError
from edge.events import uuid7
from tests.support.publisher_proc import make_events
from tests.support.tmpfs import tmpfs

REPO = Path(__file__).resolve().parents[2]


def write_then_die(d: Path, groups: int, group: int = 8) -> dict[int, str]:
    """Append in a child that SIGKILLs itself (an unclean stop: the commits are in the WAL)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.outbox_writer", str(d), "--groups", str(groups),
         "--group", str(group), "--then-die"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == -9, out.stderr
    got: dict[int, str] = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "ok":
            seqs = range(int(parts[1]), int(parts[2]) + 1)
            for seq, eid in zip(seqs, parts[3].split(","), strict=True):
                got[seq] = eid
    return got


def write_clean(d: Path, n: int) -> Outbox:
    ob = Outbox(d / "outbox.db", "cam1", uuid7(), state_path=d / "state.json")
    for _ in range(n // 8):
        ob.append(make_events(8))
    return ob


def reopen(d: Path) -> Outbox:
    return Outbox(d / "outbox.db", "cam1", uuid7(), state_path=d / "state.json")


def stored(d: Path) -> dict[int, str]:
    with sqlite3.connect(d / "outbox.db") as c:
        return {
            int(s): json.loads(p)["id"] for s, p in c.execute("SELECT seq, payload FROM events")
        }


def assert_reset_and_no_reuse(ob: Outbox, used: set[int]) -> None:
    assert ob.outbox_reset and ob.reset_reason
    assert ob.seq_start > max(used)  # never below a seq that was handed out
    first = ob.stats().next_seq
    ob.append(make_events(3))
    new = [r.seq for r in ob.read(first - 1, 10)]
    assert new == [first, first + 1, first + 2] and not set(new) & used


def test_zero_length_outbox_continues_above_every_used_seq(tmp_path: Path) -> None:
    ob = write_clean(tmp_path, 80)
    used = set(range(ob.stats().next_seq))
    ob.close()
    (tmp_path / "outbox.db").write_bytes(b"")  # zero-length file
    with reopen(tmp_path) as ob:
        assert ob.epoch == 2
        assert "missing or empty" in (ob.reset_reason or "")
        assert_reset_and_no_reuse(ob, used)


def test_outbox_file_deleted_continues_above_every_used_seq(tmp_path: Path) -> None:
    ob = write_clean(tmp_path, 40)
    used = set(range(ob.stats().next_seq))
    ob.close()
    (tmp_path / "outbox.db").unlink()
    with reopen(tmp_path) as ob:
        assert_reset_and_no_reuse(ob, used)


def test_wal_deleted_after_unclean_stop(tmp_path: Path) -> None:
    got = write_then_die(tmp_path, 20)
    wal = tmp_path / "outbox.db-wal"
    assert wal.stat().st_size > 0
    wal.unlink()
    (tmp_path / "outbox.db-shm").unlink(missing_ok=True)
    with reopen(tmp_path) as ob:
        assert "WAL is missing" in (ob.reset_reason or "")
        assert_reset_and_no_reuse(ob, set(got))


def test_wal_torn_after_unclean_stop(tmp_path: Path) -> None:
    got = write_then_die(tmp_path, 20)
    wal = tmp_path / "outbox.db-wal"
    size = wal.stat().st_size
    os.truncate(wal, size // 2 + 100)  # a tear mid-frame
    with reopen(tmp_path) as ob:
        assert "torn" in (ob.reset_reason or "")
        assert_reset_and_no_reuse(ob, set(got))


def _pages(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as c:
        return c.execute("PRAGMA page_size").fetchone()[0], c.execute(
            "PRAGMA page_count"
        ).fetchone()[0]


def test_garbage_in_a_middle_page_is_moved_aside_and_salvaged(tmp_path: Path) -> None:
    ob = write_clean(tmp_path, 400)
    before = stored(tmp_path)
    ob.close()
    size, count = _pages(tmp_path / "outbox.db")
    assert count > 10
    with (tmp_path / "outbox.db").open("r+b") as f:
        f.seek(size * (count // 2))
        f.write(os.urandom(size))
    with reopen(tmp_path) as ob:
        assert "damaged" in (ob.reset_reason or "")
        aside = list(tmp_path.glob("outbox.db.corrupt-*"))
        assert len([p for p in aside if not p.name.endswith(("-wal", "-shm"))]) == 1
        assert ob.salvaged > len(before) // 2  # one bad page of many
        now = {r.seq: json.loads(r.payload)["id"] for r in ob.read(-1, 10_000)}
        assert now and all(before[s] == i for s, i in now.items())  # same seq, same event
        assert_reset_and_no_reuse(ob, set(before))


def test_half_truncated_file_recovers_the_undelivered_rows_that_can_be_read(
    tmp_path: Path,
) -> None:
    ob = write_clean(tmp_path, 384)
    ob.ack([(0, 191)])  # 192 delivered and acknowledged, 192 still waiting
    waiting = {s: i for s, i in stored(tmp_path).items()}
    assert len(waiting) == 192
    ob.close()
    db = tmp_path / "outbox.db"
    os.truncate(db, db.stat().st_size // 2)
    with reopen(tmp_path) as ob:
        assert ob.outbox_reset
        assert list(tmp_path.glob("outbox.db.corrupt-*"))  # kept, never deleted
        now = {r.seq: json.loads(r.payload)["id"] for r in ob.read(-1, 10_000)}
        assert all(waiting[s] == i for s, i in now.items())
        # as far as readable: the rows on pages that survived the cut come back
        assert len(now) == ob.salvaged and ob.salvaged > 0
        assert_reset_and_no_reuse(ob, set(range(384)))


def test_read_only_empty_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as ro:
        with pytest.raises(ConfigError, match="not writable") as err:
            Outbox(ro / "outbox.db", "cam1", uuid7(), state_path=ro / "state.json")
        assert "\n" not in str(err.value) and str(ro) in str(err.value)
        # and the operator's tool says so in one line too
        out = subprocess.run(
            [sys.executable, "-m", "edge.cli.main", "outbox", "--data-dir", str(ro), "stats"],
            cwd=REPO, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_outbox_cli_on_a_damaged_file_is_one_clear_line(tmp_path: Path) -> None:
    write_clean(tmp_path, 400).close()
    size, count = _pages(tmp_path / "outbox.db")
    with (tmp_path / "outbox.db").open("r+b") as f:
        f.seek(size * (count // 2))
        f.write(os.urandom(size))
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "outbox", "--data-dir", str(tmp_path), "stats"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1 and "outbox.db" in out.stderr
    assert "Traceback" not in out.stderr
