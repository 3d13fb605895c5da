"""Labels, per-label thresholds and the per-detector filters, through a real ``edge run``.

Ground truth: a 90-frame 640×480 video (tests/fixtures/video.py) of scikit-image's
``coffee`` with the ``astronaut``'s head pasted at (300, 150), 200×200 px, in frames
20–69. BlazeFace short (zoo, TFLite, MediaPipe's resampling) finds that face at a score of
~0.9 (0.89-0.93; tests/integration/test_video_fixture.py guards >= 0.85) with an area
between 0.02 and 0.04 of the frame, and nothing in ``coffee`` above 0.5. With
the default stdout sink, ``edge run`` prints one face track: start, update(s), end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.models import zoo
from edge.models.resolve import resolve
from tests.fixtures.video import FaceSpan, face_video

pytestmark = pytest.mark.slow
EDGE = [sys.executable, "-m", "edge.cli.main"]
SPAN = FaceSpan(20, 69, 300, 150)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return face_video(tmp_path_factory.mktemp("v") / "face.avi", 90, [SPAN])[0]


def edge_run(tmp: Path, video: Path, detector: str, model: str = "blazeface-short") -> Any:
    cfg = tmp / "device.toml"
    cfg.write_text(
        f'device_id = "t"\ndata_dir = "{tmp / "data"}"\n[health]\nenabled = false\n'
        f'[[streams]]\nname = "cam"\nsource = "{video}"\ndetectors = ["face"]\n'
        f'[detectors.face]\nmodel = "{model}"\nthreshold = 0.6\n{detector}\n'
    )
    return subprocess.run(
        [*EDGE, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120
    )


def events(tmp: Path, video: Path, detector: str, model: str = "blazeface-short") -> list[Any]:
    done = edge_run(tmp, video, detector, model)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_unfiltered_run_emits_the_face(tmp_path: Path, video: Path) -> None:
    evs = events(tmp_path, video, "")
    assert {e["label"] for e in evs} == {"face"} and {e["track_id"] for e in evs} == {1}
    assert evs[0]["phase"] == "start" and evs[-1]["phase"] == "end"
    x1, y1, x2, y2 = evs[0]["box"]
    assert 300 / 640 < (x1 + x2) / 2 < 500 / 640 and 150 / 480 < (y1 + y2) / 2 < 350 / 480
    assert 0.02 < (x2 - x1) * (y2 - y1) < 0.04  # the area the limits below bracket


@pytest.mark.parametrize(
    ("keys", "face_events"),
    [
        ('labels = ["face"]', True),
        ('exclude_labels = ["face"]', False),
        ("labels = []", False),
        ("min_area = 0.02\nmax_area = 0.04", True),
        ("min_area = 0.05", False),
        ("max_area = 0.015", False),
        ("label_thresholds = {face = 0.7}", True),  # ~0.9 passes
        ("label_thresholds = {face = 0.97}", False),  # over the default 0.6: face needs 0.97
    ],
)
def test_filters_change_what_edge_run_emits(
    tmp_path: Path, video: Path, keys: str, face_events: bool
) -> None:
    evs = events(tmp_path, video, keys)
    assert bool(evs) == face_events, evs
    assert all(e["label"] == "face" for e in evs)


def test_an_unknown_label_is_a_config_error_listing_the_valid_ones(
    tmp_path: Path, video: Path
) -> None:
    done = edge_run(tmp_path, video, 'exclude_labels = ["person"]')
    assert done.returncode == 2 and not done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        "edge: error: detectors.face.exclude_labels: 'person' is not a label of model "
        "blazeface-short; valid labels: face"
    )


def byo_manifest(tmp: Path, labels: str, **changes: Any) -> Path:
    """BlazeFace short brought as a manifest folder whose labels come from a file."""
    folder = tmp / "model"
    folder.mkdir()
    cached = resolve("blazeface-short").path
    shutil.copy(cached, folder / cached.name)
    data = zoo.get("blazeface-short").model_dump(mode="json", exclude_none=True)
    data.pop("source")
    data.pop("labels")
    data.update(labels_file="labels.txt", **changes)
    (folder / "labels.txt").write_text(labels)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder / "manifest.json"


def test_labels_from_a_file_name_the_events(tmp_path: Path, video: Path) -> None:
    model = byo_manifest(tmp_path, "# BlazeFace has one class\nhead\n")
    evs = events(tmp_path, video, 'labels = ["head"]', str(model))
    assert evs and {e["label"] for e in evs} == {"head"}


def test_manifest_label_thresholds_apply_and_the_config_overrides_them(
    tmp_path: Path, video: Path
) -> None:
    model = byo_manifest(tmp_path, "head\n", label_thresholds={"head": 0.97})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert events(tmp_path / "a", video, "", str(model)) == []  # the manifest's 0.97
    assert events(tmp_path / "b", video, "label_thresholds = {head = 0.7}", str(model))


def test_a_labels_file_with_the_wrong_count_stops_edge_run(tmp_path: Path, video: Path) -> None:
    model = byo_manifest(tmp_path, "head\nhand\n")
    done = edge_run(tmp_path, video, "", str(model))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"edge: error: blazeface-short: labels_file {model.parent / 'labels.txt'}: 2 labels but "
        "the model has 1 class; give one label per class, in class-index order"
    )
