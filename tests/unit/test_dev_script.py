"""``./dev``: its help paths, and an extras stamp that does not reinstall on every switch.

Nothing is installed: the venv is a fake whose ``python``, ``edge``, ``ruff`` and
``mypy`` only log how they were called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

DEV = REPO / "dev"
FAKE = """#!/bin/sh
echo "$(basename "$0") $* VIRTUAL_ENV=${VIRTUAL_ENV:-}" >>"$FAKE_LOG"
[ "$1 $2 $3" = "-m edge.cli.main demo" ] && echo "usage: edge demo (fake)"
exit 0
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="./dev is a bash script")


def _dev(
    *args: str, venv: Path, log: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "EDGEWISE_VENV": str(venv), "EDGEWISE_SKIP_SYSTEM": "1", **env}
    if log is not None:
        full["FAKE_LOG"] = str(log)
    return subprocess.run(
        [str(DEV), *args], capture_output=True, text=True, timeout=60, env=full, check=False
    )


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "edge", "ruff", "mypy"):
        exe = venv / "bin" / name
        exe.write_text(FAKE)
        exe.chmod(0o755)
    log.write_text("")
    return venv, log


@pytest.mark.parametrize("arg", ["help", "-h", "--help", None])
def test_help_exits_0_and_is_only_the_header(arg: str | None, tmp_path: Path) -> None:
    proc = _dev(*([arg] if arg else []), venv=tmp_path / "none")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "edgewise developer entry point. From a fresh clone:"
    assert "set -euo pipefail" not in proc.stdout and "#" not in proc.stdout
    for cmd in ("demo", "test", "bench", "shell", "lock", "help"):
        assert any(ln.startswith(f"  ./dev {cmd} ") for ln in lines), cmd
    assert not (tmp_path / "none").exists()  # nothing was set up


def test_unknown_command_exits_2_with_the_help_on_stderr(tmp_path: Path) -> None:
    proc = _dev("tset", venv=tmp_path / "none")
    assert proc.returncode == 2
    assert proc.stdout == "" and "unknown command: tset" in proc.stderr
    assert "./dev test" in proc.stderr


def test_demo_help_before_any_setup(tmp_path: Path) -> None:
    proc = _dev("demo", "--help", venv=tmp_path / "none")
    assert proc.returncode == 0
    assert "./dev demo" in proc.stdout and "once .venv is set up" in proc.stdout
    assert not (tmp_path / "none").exists()
    venv, log = _fake_venv(tmp_path)
    proc = _dev("demo", "-h", venv=venv, log=log)
    assert proc.returncode == 0 and proc.stdout == "usage: edge demo (fake)\n"
    assert "pip" not in log.read_text()  # edge demo's own help, nothing installed


def _installs(log: Path) -> list[str]:
    return [ln.split("-e ", 1)[1].split()[0] for ln in log.read_text().splitlines() if " -e " in ln]


def test_demo_and_test_do_not_reinstall_each_other(tmp_path: Path) -> None:
    venv, log = _fake_venv(tmp_path)
    for cmd in ("demo", "test", "demo", "test", "demo"):
        proc = _dev(cmd, venv=venv, log=log)
        assert proc.returncode == 0, proc.stderr
    assert _installs(log) == [".[audio,demo,hub,sync]", ".[audio,convert,demo,dev,hub,sync]"]
    # other pins: installed again, once
    for cmd in ("demo", "demo"):
        assert _dev(cmd, venv=venv, log=log, EDGEWISE_UNPINNED="1").returncode == 0
    assert _installs(log)[2:] == [".[audio,demo,hub,sync]"]


def test_shell_runs_a_command_in_the_venv(tmp_path: Path) -> None:
    venv, log = _fake_venv(tmp_path)
    proc = _dev("shell", "edge", "--version", venv=venv, log=log)
    assert proc.returncode == 0, proc.stderr
    assert f"edge --version VIRTUAL_ENV={venv}" in log.read_text().splitlines()
