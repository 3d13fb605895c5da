"""``edge-convert --auto-fallback`` on the real ``ppocr-det`` (issue 10): it used to crash
in about half of the runs (onnxruntime's "Shape mismatch attempting to re-use buffer" out of
``qdq_loss_debug``), depend on PYTHONHASHSEED, and peak at 12.6 GB against 3.5 GB for a
plain conversion.

The gate asks for output cosine ≥ 0.99, which INT8 misses (≈0.967), so the fallback round
runs; one round (``--fallback-rounds 1``) on four calibration images and two evaluation
images keeps each conversion under a minute on two cores. Every conversion runs in its own
process, whose peak RSS comes from ``os.wait4``'s ``ru_maxrss``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.models.resolve import ResolvedModel
from edge.profiles import PROFILES_DIR
from tests.fixtures.convert_scenes import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, write_scenes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300
MAX_MEMORY_RATIO = 2.2


@dataclass(frozen=True)
class Run:
    rc: int
    max_rss_mb: float
    wall_s: float
    stderr: str
    report: dict[str, Any]


def _convert(args: list[str], out: Path, hash_seed: str) -> Run:
    env = os.environ | {"PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    err_path = out.with_suffix(".stderr")
    t0 = time.perf_counter()
    with err_path.open("w") as err:
        cmd = [sys.executable, "-m", "converters.cli", *args, "-o", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        timer = threading.Timer(TIMEOUT_S, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        finally:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return Run(proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - t0,
               err_path.read_text(), report)  # fmt: skip


@pytest.fixture(scope="module")
def setup(
    zoo_model: Callable[[str], ResolvedModel], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], Path]:
    zoo_model("ppocr-det")  # pulled and verified in the shared cache
    root = tmp_path_factory.mktemp("fallback")
    write_scenes(root / "calib", CALIBRATION_PHOTOS[:4], 1, seed=1)
    write_scenes(root / "eval", EVALUATION_PHOTOS[:1], 2, seed=2)
    text = (PROFILES_DIR / "x86-64-vnni.toml").read_text()
    profile = root / "strict.toml"
    profile.write_text(text.replace('"x86-64-vnni"', '"strict"') + "min_cosine = 0.99\n")
    args = ["ppocr-det", "--profile", str(profile), "--calibration", str(root / "calib"),
            "--eval", str(root / "eval")]  # fmt: skip
    return args, root


@pytest.fixture(scope="module")
def plain(setup: tuple[list[str], Path]) -> Run:
    args, root = setup
    return _convert(args, root / "plain", "0")


@pytest.fixture(scope="module")
def fallback_runs(setup: tuple[list[str], Path]) -> tuple[Run, Run]:
    """The same --auto-fallback conversion under PYTHONHASHSEED 0 and 1. Before issue 10's
    fix, 0 crashed (Shape mismatch attempting to re-use buffer), and so did 2 and 3; 1 ran
    on past 9.6 GB."""
    args, root = setup
    fb = [*args, "--auto-fallback", "--fallback-rounds", "1"]
    return _convert(fb, root / "fb-0", "0"), _convert(fb, root / "fb-1", "1")


def _outcome(r: Run) -> dict[str, Any]:
    keys = ("excluded_nodes", "task_value", "cosine_min", "auto_fallback", "gate")
    return {k: r.report.get(k) for k in keys}


def test_auto_fallback_finishes_without_a_crash(plain: Run, fallback_runs: tuple[Run, Run]) -> None:
    assert plain.rc == 3 and plain.report["cosine_min"] < 0.99  # the gate misses: a round runs
    for run in fallback_runs:
        assert run.rc in (0, 3), run.stderr[-2000:]
        assert "Traceback" not in run.stderr
    report = fallback_runs[0].report
    fb = report["auto_fallback"]
    assert fb["seed"] == 0 and len(fb["debug_samples"]) == 3
    assert [r.get("ranked_by") for r in fb["rounds"]] == ["activation_sqnr", None]
    assert fb["notes"] == [] and len(report["excluded_nodes"]) >= 2
    # folded Relus are compared after the ReLU, so they are not what gets picked
    assert not any("Relu" in n for n in report["excluded_nodes"])


def test_auto_fallback_same_result_for_any_hash_seed(fallback_runs: tuple[Run, Run]) -> None:
    a, b = fallback_runs
    assert a.rc == b.rc
    assert _outcome(a) == _outcome(b)


def test_auto_fallback_memory_within_2x_plain(plain: Run, fallback_runs: tuple[Run, Run]) -> None:
    peak = max(r.max_rss_mb for r in fallback_runs)
    ratio = peak / plain.max_rss_mb
    print(
        f"\nppocr-det peak RSS: plain {plain.max_rss_mb:.0f} MB in {plain.wall_s:.1f} s, "
        f"--auto-fallback (1 round) {peak:.0f} MB in "
        f"{', '.join(f'{r.wall_s:.1f}' for r in fallback_runs)} s, ratio {ratio:.2f}"
    )
    assert ratio <= MAX_MEMORY_RATIO
