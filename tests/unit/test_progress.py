"""Progress lines: on stderr, throttled, silent with -q, never in --json stdout."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import progress
from edge.errors import ZooError
from edge.models import tool_env


@pytest.fixture(autouse=True)
def _restore_progress() -> Iterator[None]:
    yield
    for h in list(progress.log.handlers):
        progress.log.removeHandler(h)
    progress.log.propagate = True
    progress.log.setLevel(logging.NOTSET)


def test_configure_writes_prog_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    progress.configure("edge", quiet=False)
    progress.step("calibrate: 3 samples")
    out = capsys.readouterr()
    assert out.out == "" and out.err == "edge: calibrate: 3 samples\n"
    progress.configure("edge", quiet=True)
    progress.step("quantize")
    assert capsys.readouterr().err == ""
    progress.configure("edge", quiet=False)  # configured twice: still one line, not two
    progress.step("x")
    assert capsys.readouterr().err == "edge: x\n"


def test_byte_progress_is_throttled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    progress.configure("edge", quiet=False)
    bar = progress.ByteProgress("downloading x")
    for i in range(1000):  # a thousand chunks within a second: no line
        bar.update(i * 1024, 2 * 2**20)
    clock[0] += 10
    bar.update(2**20)
    bar.finish()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "edge: downloading x: 1.0 MiB of 2.0 MiB (50 %)",
        "edge: downloading x: 1.0 MiB, done",
    ]


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ("Collecting tensorflow-cpu==2.15.1\n", "Collecting tensorflow-cpu==2.15.1"),
        (
            "  Downloading tensorflow_cpu-2.15.1-cp311-x86_64.whl (230.0 MB)\n",
            "Downloading tensorflow_cpu-2.15.1-cp311-x86_64.whl (219.3 MiB)",
        ),
        ("  Downloading absl-2.1.0.whl (133 kB)", "Downloading absl-2.1.0.whl (129.9 KiB)"),
        ("Installing collected packages: a, b", "Installing collected packages: a, b"),
        ("  Using cached numpy.whl", None),
        ("Requirement already satisfied: pip", None),
        ("", None),
        ("Collecting " + "x" * 5000, "Collecting " + "x" * 189),  # bounded
    ],
)
def test_pip_step(line: str, step: str | None) -> None:
    assert tool_env.pip_step(line) == step


def test_approx_size_knows_tensorflow() -> None:
    assert tool_env.approx_size(["tensorflow-cpu==2.15.1", "tf2onnx==1.16.1"]) == 1_315_210_038
    assert tool_env.approx_size(["six==1.16.0"]) is None


def _tiny_wheel(folder: Path) -> Path:
    """A real, installable wheel of one module, made here: no index needed."""
    wheel = folder / "edgewise_tiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("edgewise_tiny.py", "X = 1\n")
        info = "edgewise_tiny-1.0.dist-info"
        zf.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: edgewise-tiny\nVersion: 1.0\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.mark.slow
def test_tool_env_build_says_what_and_streams_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    progress.configure("edge", quiet=False)
    reqs = ["--no-index", str(_tiny_wheel(tmp_path))]
    python = tool_env.ensure_tool_env("tiny", reqs, tmp_path, hint="offline", size=3 * 2**20)
    assert python.is_file()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        f"edge: building the tiny tool environment in {tmp_path / 'tools' / 'tiny'}"
    )
    assert "about 3.0 MiB; once" in err[0]
    assert any(ln.startswith("edge: tiny tool environment: Processing ") for ln in err)
    assert any("Successfully installed edgewise-tiny-1.0" in ln for ln in err)
    assert err[-1].startswith("edge: tiny tool environment: built in ") and "iB on disk" in err[-1]
    # built: the second call says nothing and builds nothing
    assert tool_env.ensure_tool_env("tiny", reqs, tmp_path, hint="offline") == python
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_tool_env_failure_is_one_line_with_the_hint(tmp_path: Path) -> None:
    reqs = ["--no-index", str(tmp_path / "missing-1.0-py3-none-any.whl")]
    with pytest.raises(ZooError, match=r"cannot build the bad tool environment .*; use --from DIR"):
        tool_env.ensure_tool_env("bad", reqs, tmp_path, hint="use --from DIR")
    assert not (tmp_path / "tools" / "bad" / ".installed").exists()


def test_tool_env_that_cannot_start_is_a_zoo_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool_env.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(ZooError, match="cannot build the x tool environment"):
        tool_env.ensure_tool_env("x", ["six"], tmp_path, hint="h")
