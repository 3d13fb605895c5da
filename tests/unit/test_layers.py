"""The layers hold: import-linter's contracts (pyproject.toml) over edge, cloud_sync, converters.

``lint-imports`` counts every import statement, including those inside functions, so
a lazy import that crosses a layer goes by name (``edge.sinks.SINKS``). The contracts
are checked on this tree, and each kind is shown to catch a crossing planted in a copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_contracts_hold() -> None:
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("probe", "source", "contract"),
    [
        ("edge/_probe.py", "import cloud_sync.sink\n", "edge never imports cloud_sync"),
        (
            "edge/_probe.py",
            "def later() -> None:\n    from cloud_sync import outbox  # lazy: counted too\n",
            "edge never imports cloud_sync",
        ),
        ("edge/pipeline/_probe.py", "import converters.cli\n", "edge never imports converters"),
        ("cloud_sync/hub/_probe.py", "import cv2\n", "the hub runs without the device runtime"),
        ("cloud_sync/hub/_probe.py", "import edge.pipeline\n", "the hub runs without"),
        ("converters/_probe.py", "import edge.daemon\n", "converters use runtimes"),
        ("edge/config/_probe.py", "import onnxruntime\n", "loading a config needs no runtime"),
        ("edge/runtime/_probe.py", "import edge.detectors\n", "edge layers"),
    ],
)
def test_a_crossing_import_breaks_a_contract(
    probe: str, source: str, contract: str, tmp_path: Path
) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("edge", "cloud_sync", "converters"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=skip)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / probe).write_text(source)
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    broken = proc.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken.replace("\n", ""), proc.stdout
    assert probe.removesuffix(".py").replace("/", ".") in broken, proc.stdout


def test_loading_a_config_imports_no_cloud_sync_nor_a_runtime() -> None:
    """``import edge.config; load_config(...)`` with an mqtt sink and a [sync] section."""
    code = (
        "import sys, pathlib\n"
        "import edge.config\n"
        "cfg = edge.config.load_config(pathlib.Path('examples/configs/rtsp.toml'))\n"
        "assert cfg.sync is not None and any(s.type == 'mqtt' for s in cfg.sinks)\n"
        "heavy = ('cloud_sync', 'onnxruntime', 'cv2', 'numpy', 'paho')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
