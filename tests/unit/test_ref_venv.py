"""tests/support/ref_venv.py: build once, reuse by stamp, rebuild on a changed list,
serialise concurrent builders, fail with one line. Empty requirement lists keep it fast
(no pip); the failure case asks PyPI for a name that cannot exist."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.support import ref_venv
from tests.support.ref_venv import RefVenvError, ensure_venv


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path))
    return tmp_path


def test_builds_once_and_reuses_by_stamp(home: Path) -> None:
    py = ensure_venv("t", [])
    assert py == home / "venvs" / "t" / "bin" / "python" and py.is_file()
    marker = home / "venvs" / "t" / "marker"
    marker.write_text("kept")
    assert ensure_venv("t", []) == py and marker.is_file()  # reused, not rebuilt


def test_a_half_built_venv_is_rebuilt(home: Path) -> None:
    ensure_venv("t", [])
    (home / "venvs" / "t" / ref_venv.STAMP).unlink()  # as if the builder died
    marker = home / "venvs" / "t" / "marker"
    marker.write_text("stale")
    ensure_venv("t", [])
    assert not marker.exists()


def test_concurrent_builders_build_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    real = subprocess.run

    def counting(cmd: list[str], **kw: object) -> object:
        builds.append(1)
        return real(cmd, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counting)
    out: list[Path] = []
    threads = [threading.Thread(target=lambda: out.append(ensure_venv("t", []))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 1 and len(out) == 3 and len(builds) == 1


@pytest.mark.slow
def test_a_failed_install_is_one_line_naming_the_venv(home: Path) -> None:
    with pytest.raises(RefVenvError) as exc:
        ensure_venv("bad", ["edgewise-no-such-package-xyz==0.0.0"], timeout_s=300)
    msg = str(exc.value)
    assert "\n" not in msg and str(home / "venvs" / "bad") in msg
    assert not (home / "venvs" / "bad" / ref_venv.STAMP).exists()
