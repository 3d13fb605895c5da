"""edge.atomic: the one durable-replace helper (OTA record, seq state, remote config), and
what its callers do on a full disk: refuse, name the file, keep the old contents, leave
no temporary file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.outbox import OutboxError
from cloud_sync.outbox.state import SeqState, read_state, write_state
from edge.atomic import StagedFile, write_atomic
from edge.models.ota_record import OtaRecord, OtaRecordError, read_record, write_record
from tests.support.tmpfs import fill, tmpfs


def test_write_atomic_replaces_and_leaves_only_the_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_staged_file_is_in_place_only_once_committed(tmp_path: Path) -> None:
    target = tmp_path / "device.toml"
    target.write_text("old\n")
    staged = StagedFile(target, b"new\n", prefix=".config-")
    assert target.read_text() == "old\n" and len(list(tmp_path.glob(".config-*"))) == 1
    staged.discard()
    staged.discard()  # twice is harmless
    assert target.read_text() == "old\n" and not list(tmp_path.glob(".config-*"))
    again = StagedFile(target, b"new\n", prefix=".config-")
    again.commit()
    again.discard()  # after a commit: nothing to remove, the new file stays
    assert target.read_text() == "new\n" and not list(tmp_path.glob(".config-*"))
    with pytest.raises(RuntimeError, match="already committed"):
        again.commit()


def test_a_folder_that_is_gone_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "f", b"x")


def test_full_disk_ota_record_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    """The OTA record on a real full tmpfs: the update is refused in one line naming the
    record, the accepted counters stay as they were, no temporary file is left."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        path = mnt / "device.ota.json"
        old = OtaRecord(counters={"face": 7})
        write_record(path, old)
        filler = fill(mnt)
        big = OtaRecord(counters={f"d{i}": i + 1 for i in range(2000)})
        with pytest.raises(OtaRecordError, match=r"device\.ota\.json: cannot write the OTA"):
            write_record(path, big)
        assert read_record(path) == old
        assert sorted(p.name for p in mnt.iterdir()) == ["device.ota.json", filler.name]


def test_full_disk_seq_state_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        path = mnt / "state.json"
        write_state(path, SeqState(device_id="cam", epoch=1, next_seq=10))
        filler = fill(mnt)
        with pytest.raises(OutboxError, match=r"state\.json: cannot record the seq"):
            write_state(path, SeqState(device_id="cam" * 100, epoch=2, next_seq=20_000))
        assert read_state(path) == SeqState(device_id="cam", epoch=1, next_seq=10)
        assert sorted(p.name for p in mnt.iterdir()) == [filler.name, "state.json"]
