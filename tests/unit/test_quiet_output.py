"""``-q``: no LiteRT INFO line from C while the interpreter is created (a real .tflite),
unless ``--debug``; ``--draw`` says where the image went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from edge import native_stderr
from tests.conftest import REPO

EDGE = [sys.executable, "-m", "edge.cli.main"]
FACE = REPO / "edge" / "demo" / "media" / "face_astronaut.jpg"
XNNPACK = "Created TensorFlow Lite XNNPACK delegate"


@pytest.fixture
def _blazeface(zoo_model: Callable[[str], object]) -> None:
    zoo_model("blazeface-short")


def _detect(*flags: str, tail: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE, *flags, "detect", "blazeface-short", str(FACE), *tail],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.usefixtures("_blazeface")
@pytest.mark.parametrize(
    ("flags", "shown"), [((), True), (("-q",), False), (("-q", "--debug"), True)]
)
def test_q_silences_the_xnnpack_line(flags: tuple[str, ...], shown: bool) -> None:
    proc = _detect(*flags)
    assert proc.returncode == 0, proc.stderr
    assert (XNNPACK in proc.stderr) is shown
    assert "1 detection(s)" in proc.stdout  # the result itself is untouched


@pytest.fixture
def quiet() -> Iterator[None]:
    native_stderr.set_quiet(True)
    yield
    native_stderr.set_quiet(False)


def _fd2_through(tmp_path: Path, body: Callable[[], None]) -> bytes:
    """What reaches fd 2 while ``body`` runs (fd 2 pointed at a file meanwhile)."""
    out = tmp_path / "fd2"
    with out.open("wb") as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            body()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return out.read_bytes()


@pytest.mark.usefixtures("quiet")
def test_only_the_known_line_is_dropped(tmp_path: Path) -> None:
    def body() -> None:
        with native_stderr.quiet_native_info():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
            os.write(2, b"WARNING: a delegate warning the user must see\n")
            os.write(2, b"no newline at the end")

    assert _fd2_through(tmp_path, body) == (
        b"WARNING: a delegate warning the user must see\nno newline at the end"
    )


@pytest.mark.usefixtures("quiet")
def test_fd2_is_restored_when_creation_fails(tmp_path: Path) -> None:
    def body() -> None:
        with pytest.raises(RuntimeError), native_stderr.quiet_native_info():
            os.write(2, b"ERROR: cannot load the model\n")
            raise RuntimeError("boom")
        os.write(2, b"after\n")

    assert _fd2_through(tmp_path, body) == b"ERROR: cannot load the model\nafter\n"


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("memfd", [True, False, "refused"], ids=["memfd", "none", "refused"])
def test_the_capture_needs_no_writable_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool | str
) -> None:
    """A full or read-only /tmp must not break ``-q``: on Linux the capture is a memfd; where
    there is none, a temporary file (and then a broken TMPDIR is the user's to see)."""
    if memfd is True and not hasattr(os, "memfd_create"):
        pytest.skip("os.memfd_create exists only on Linux")
    if memfd is False:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    elif memfd == "refused":  # ENOSYS under a seccomp filter: the temporary file instead

        def refused(*_a: object) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    else:
        monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-dir"))
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again

    def body() -> None:
        with native_stderr.quiet_native_info():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
            os.write(2, b"kept\n")

    assert _fd2_through(tmp_path, body) == b"kept\n"


def test_not_quiet_leaves_fd2_alone(tmp_path: Path) -> None:
    def body() -> None:
        with native_stderr.quiet_native_info():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")

    assert XNNPACK.encode() in _fd2_through(tmp_path, body)


@pytest.mark.slow
@pytest.mark.usefixtures("_blazeface")
def test_draw_says_where_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "drawn.png"
    proc = _detect("-q", tail=("--draw", str(out)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{FACE}: drew 1 detection(s) into {out}"
    assert cv2.imread(str(out)) is not None
    proc = _detect("-q", tail=("--draw", str(out), "--json"))
    assert json.loads(proc.stdout)["drawn"] == str(out)
