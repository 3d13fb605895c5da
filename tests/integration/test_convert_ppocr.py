"""The real ``ppocr-det`` converted for ``x86-64-vnni`` (U8S8 per-channel QDQ).

Ground truth: the FP32 model's own boxes on held-out images (photos with text lines
drawn by ``tests/fixtures/convert_scenes.py``; calibration uses other photos and other
text). The INT8 model must find the same boxes (F1 ≥ 0.97 at IoU 0.5), be ≤ 0.35× the
FP32 size, and ``edge detect BUNDLE image`` must run it and find the drawn text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from converters.cli import main
from edge.boxes import iou
from edge.models.resolve import ResolvedModel
from tests.fixtures.convert_scenes import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, write_scenes
from tests.fixtures.text_scene import astronaut_scene

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scenes")
    calib = write_scenes(root / "calib", CALIBRATION_PHOTOS, 1, seed=1)
    evals = write_scenes(root / "eval", EVALUATION_PHOTOS, 2, seed=2)
    assert not {p.name for p in calib} & {p.name for p in evals}  # disjoint sets
    return root / "calib", root / "eval"


@pytest.fixture(scope="module")
def bundle(
    scenes: tuple[Path, Path],
    zoo_model: Callable[[str], ResolvedModel],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    zoo_model("ppocr-det")  # pulled and verified in the shared cache
    out = tmp_path_factory.mktemp("bundle") / "ppocr-x86"
    calib, evals = scenes
    args = ["ppocr-det", "--profile", "x86-64-vnni", "--calibration", str(calib)]
    assert main([*args, "--eval", str(evals), "-o", str(out)]) == 0
    return out


def test_int8_matches_fp32_and_is_small(bundle: Path) -> None:
    report = json.loads((bundle / "report.json").read_text())
    assert report["task_metric"] == "box_f1"
    assert report["samples"] == 8
    assert sum(r["fp32_boxes"] for r in report["per_sample"]) >= 16  # the text was found
    assert report["task_value"] >= 0.97, report["per_sample"]
    assert report["size_ratio"] <= 0.35
    assert report["gate"]["passed"] is True
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["build"]["recipe"]["activation_type"] == "uint8"
    assert manifest["build"]["source_sha256"].startswith("d2a7720d45a5")


def test_edge_detect_runs_the_bundle(bundle: Path, tmp_path: Path) -> None:
    import cv2

    image, truth = astronaut_scene()
    path = tmp_path / "astronaut-text.png"
    cv2.imwrite(str(path), image)
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "detect", str(bundle), str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    boxes = [tuple(d["box"]) for d in doc["detections"]]
    for t in truth:  # every drawn line is found by the INT8 bundle
        assert max(iou(t, b) for b in boxes) >= 0.5, (t, boxes)
