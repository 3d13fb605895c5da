"""What ``edge demo`` refuses before it starts anything, and the state it clears."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest

from edge.demo.preflight import (
    DemoBusyError,
    check_device_free,
    check_ports,
    lock_workdir,
    port_taken,
    reset_state,
)
from edge.errors import EdgeError
from edge.lock import DataDirLock


def test_a_held_workdir_is_refused_with_its_path_and_holder(tmp_path: Path) -> None:
    first = lock_workdir(tmp_path)
    try:
        with pytest.raises(DemoBusyError) as exc:
            lock_workdir(tmp_path)
        msg = str(exc.value)
        assert str(tmp_path) in msg and "--workdir" in msg
        assert f"PID {os.getpid()}" in msg
        assert "\n" not in msg and exc.value.exit_code != 0
    finally:
        first.release()
    lock_workdir(tmp_path).release()  # free again once the first let go


def test_a_workdir_that_cannot_be_created_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(EdgeError, match="cannot create"):
        lock_workdir(tmp_path / "file" / "demo")


def test_a_daemon_left_behind_on_the_device_dir_is_refused(tmp_path: Path) -> None:
    orphan = DataDirLock(tmp_path / "device")
    orphan.acquire()
    try:
        with pytest.raises(DemoBusyError, match=r"device: a daemon \(PID \d+\) from an earlier"):
            check_device_free(tmp_path)
    finally:
        orphan.release()
    check_device_free(tmp_path)


def test_a_listening_port_is_refused_with_its_flag() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port_taken(port)
        with pytest.raises(DemoBusyError) as exc:
            check_ports({"--http-port": port})
        assert f"127.0.0.1:{port} is in use" in str(exc.value)
        assert "--http-port" in str(exc.value)
    assert not port_taken(port)
    check_ports({"--http-port": port})


@pytest.mark.parametrize("port", [-1, 65536, 10**6])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(DemoBusyError, match="not a TCP port"):
        check_ports({"--mqtt-port": port})


def test_reset_clears_the_hub_database_its_snapshots_and_the_outbox(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("CREATE TABLE stale (x)")
    (tmp_path / "hub.db-wal").write_bytes(b"x")
    (tmp_path / "hub.db.snapshots" / "ab").mkdir(parents=True)
    (tmp_path / "device" / "outbox.db").parent.mkdir()
    (tmp_path / "device" / "outbox.db").write_bytes(b"x")
    (tmp_path / "logs").mkdir()
    (tmp_path / "demo-v2.avi").write_bytes(b"video")
    reset_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-v2.avi", "logs"]
    reset_state(tmp_path)  # nothing to clear is fine


def test_reset_that_cannot_delete_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hub.db").write_bytes(b"x")

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(EdgeError, match=r"hub.db: cannot delete .*--keep"):
        reset_state(tmp_path)
