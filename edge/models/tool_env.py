"""Isolated, pinned tool environments for conversion recipes.

A recipe's tools (tf2onnx with TensorFlow, for one) pin versions that cannot share
edgewise's environment, so each runs from its own venv under
``$EDGEWISE_HOME/tools/<name>``, created on first use with exactly the pinned
requirements, as the onnx2tf environment of ``converters.tflite`` is. A stamp
file records the requirements it was built with; other requirements rebuild it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from edge.errors import ZooError

log = logging.getLogger(__name__)

_STAMP = ".installed"


def tool_dir(name: str, home: Path) -> Path:
    return home / "tools" / name


def ensure_tool_env(name: str, requirements: list[str], home: Path, *, hint: str) -> Path:
    """The python of the tool venv ``name``, built first when missing or stale.

    ``hint`` ends the error when it cannot be built (what to do offline).
    """
    root = tool_dir(name, home)
    python, stamp = root / "bin" / "python", root / _STAMP
    want = "\n".join(requirements)
    if python.is_file() and stamp.is_file() and stamp.read_text() == want:
        return python
    if root.exists():
        shutil.rmtree(root)
    log.warning(
        "creating the %s tool environment in %s (%s; once)", name, root, ", ".join(requirements)
    )
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
    ]  # fmt: skip
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603  our argv, no shell
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ZooError(
                f"cannot build the {name} tool environment in {root} ({exc}); {hint}"
            ) from None
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("WARNING")]
            tail = (lines or ["no output"])[-1].strip()[:300]
            raise ZooError(
                f"cannot build the {name} tool environment in {root} from PyPI ({tail}); {hint}"
            )
    stamp.write_text(want)
    return python
