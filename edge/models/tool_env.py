"""Isolated, pinned tool environments for conversion recipes.

A recipe's tools (tf2onnx with TensorFlow, for one) pin versions that cannot share
edgewise's environment, so each runs from its own venv under
``$EDGEWISE_HOME/tools/<name>``, created on first use with exactly the pinned
requirements, as the onnx2tf environment of ``converters.tflite`` is. A stamp
file records the requirements it was built with; other requirements rebuild it.

Building one takes minutes and a gigabyte or more (TensorFlow), so it says what it
builds and how big it roughly is, and passes on pip's steps (each package collected,
downloaded, installed) as progress lines (``edge.progress``).
"""

from __future__ import annotations

import collections
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edge import progress
from edge.errors import ZooError
from edge.units import format_size

log = logging.getLogger(__name__)

_STAMP = ".installed"
# measured: tensorflow-cpu 2.15.1 with tf2onnx 1.16.1 is 1,315,210,038 bytes installed
_TENSORFLOW_BYTES = 1_315_210_038
_STEPS = ("Collecting", "Downloading", "Processing", "Installing", "Successfully")
_PIP_SIZE = re.compile(r"\((\d+(?:\.\d+)?) (kB|MB|GB)\)")
_PIP_UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9}


def tool_dir(name: str, home: Path) -> Path:
    return home / "tools" / name


def approx_size(requirements: list[str]) -> int | None:
    """Roughly how many bytes the environment takes, when we know (TensorFlow's)."""
    if any(r.lower().startswith(("tensorflow", "tf2onnx", "onnx2tf")) for r in requirements):
        return _TENSORFLOW_BYTES
    return None


def pip_step(line: str) -> str | None:
    """One line of pip's output as a progress line, or ``None`` for the rest.

    pip's sizes are decimal (``(230.0 MB)``); they are rewritten in edgewise's units."""
    text = line.strip()
    if not text.startswith(_STEPS):
        return None
    m = _PIP_SIZE.search(text)
    if m:
        size = format_size(float(m.group(1)) * _PIP_UNITS[m.group(2)])
        text = text[: m.start()] + f"({size})" + text[m.end() :]
    return text[:200]


def _run_step(cmd: list[str], label: str) -> tuple[int, list[str]]:
    """Run one build step, passing its pip steps on; its exit code and last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=20)
    proc = subprocess.Popen(  # noqa: S603  our argv, no shell
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            tail.append(line.rstrip())
            step = pip_step(line)
            if step is not None:
                progress.step(f"{label}: {step}")
        rc = proc.wait(timeout=1800)
    return rc, list(tail)


def ensure_tool_env(
    name: str, requirements: list[str], home: Path, *, hint: str, size: int | None = None
) -> Path:
    """The python of the tool venv ``name``, built first when missing or stale.

    ``hint`` ends the error when it cannot be built (what to do offline); ``size`` is
    roughly how big it gets (default: ``approx_size``)."""
    root = tool_dir(name, home)
    python, stamp = root / "bin" / "python", root / _STAMP
    want = "\n".join(requirements)
    if python.is_file() and stamp.is_file() and stamp.read_text() == want:
        return python
    if root.exists():
        shutil.rmtree(root)
    size = size if size is not None else approx_size(requirements)
    about = f", about {format_size(size)}" if size else ""
    progress.step(
        f"building the {name} tool environment in {root} ({', '.join(requirements)}{about}; "
        "once, it takes minutes)"
    )
    label = f"{name} tool environment"
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(python), "-m", "pip", "install", "--progress-bar", "off",
         "--disable-pip-version-check", *requirements],
    ]  # fmt: skip
    started = time.monotonic()
    for cmd in steps:
        try:
            rc, tail = _run_step(cmd, label)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ZooError(
                f"cannot build the {name} tool environment in {root} ({exc}); {hint}"
            ) from None
        if rc != 0:
            lines = [ln for ln in tail if ln.strip() and not ln.startswith("WARNING")]
            last = (lines or ["no output"])[-1].strip()[:300]
            raise ZooError(
                f"cannot build the {name} tool environment in {root} from PyPI ({last}); {hint}"
            )
    stamp.write_text(want)
    built = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
    progress.step(
        f"{label}: built in {time.monotonic() - started:.0f} s, {format_size(built)} on disk"
    )
    return python
