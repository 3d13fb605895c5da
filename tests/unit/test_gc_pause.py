"""``edge.gc_pause``: the collector is off while the ``edge`` program starts and on again
once each command's start-up is over; a collector someone else turned off stays off.
(The figure it buys is bench/bench_cold_start.py's.)"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge import gc_pause
from edge.cli.main import main
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _collector_back_on() -> Iterator[None]:
    yield
    gc_pause.resume()
    gc.enable()


def test_pause_and_resume() -> None:
    gc_pause.pause()
    assert not gc.isenabled() and gc_pause.paused()
    gc_pause.resume()
    assert gc.isenabled() and not gc_pause.paused()
    gc_pause.resume()  # idempotent
    assert gc.isenabled()


def test_a_collector_turned_off_by_someone_else_stays_off() -> None:
    gc.disable()
    gc_pause.pause()
    gc_pause.resume()
    assert not gc.isenabled()


def test_a_command_without_a_start_up_of_its_own_resumes_before_it_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gc_pause.pause()
    assert main(["models", "list"]) == 0
    assert gc.isenabled()
    assert "blazeface-short" in capsys.readouterr().out


def test_edge_detect_resumes_once_the_model_is_loaded(
    zoo_model: Callable[[str], object], capsys: pytest.CaptureFixture[str]
) -> None:
    zoo_model("blazeface-short")
    face = REPO / "edge" / "demo" / "media" / "face_astronaut.jpg"
    gc_pause.pause()
    assert main(["-q", "detect", "blazeface-short", str(face), "--json"]) == 0
    assert gc.isenabled()
    assert '"label":"face"' in capsys.readouterr().out.replace(" ", "")


def test_the_daemon_resumes_when_it_settles() -> None:
    from edge.daemon.core import settle

    gc_pause.pause()
    settle()
    assert gc.isenabled()


def test_the_program_starts_paused(tmp_path: Path) -> None:
    """Through the program's entry (``python -m edge``; the console script is the same
    function), the collector is off while ``edge.cli.main`` is imported."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import gc, sys\n"
        "import edge.cli.entry as entry\n"
        "def fake() -> int:\n"
        "    print('paused' if not gc.isenabled() else 'running')\n"
        "    return 0\n"
        "sys.modules['edge.cli.main'] = type(sys)('edge.cli.main')\n"
        "sys.modules['edge.cli.main'].main = fake\n"
        "raise SystemExit(entry.main())\n"
    )
    out = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "paused", out.stderr
    version = subprocess.run(
        [sys.executable, "-m", "edge", "--version"], capture_output=True, text=True, cwd=REPO,
        timeout=60,
    )  # fmt: skip
    assert version.returncode == 0 and version.stdout.startswith("edgewise "), version.stderr
