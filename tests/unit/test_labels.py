"""Labels shared by every image decoder: ``labels_file``, the count check, per-label thresholds.

Mechanics only (hand-made tensors and a fake detector); ``tests/integration/
test_detector_filters.py`` runs them on BlazeFace and a real photo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.detectors import (
    LabelThresholds,
    build_detector,
    check_label_count,
    set_threshold,
    with_label_thresholds,
)
from edge.detectors.base import Detection, Image, StageTimes
from edge.detectors.ssd_anchor import SsdAnchorDetector
from edge.errors import InputError, ManifestError
from edge.models import zoo
from edge.models.manifest import Manifest, parse_manifest, read_manifest
from edge.runtime.base import AcceleratorInfo
from tests.unit.test_ssd_anchor import FakeBackend, hand_made, params_of


def _base(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((zoo.ZOO_DIR / "blazeface-short.json").read_text())
    data.pop("source")
    data.update(changes)
    return data


def _manifest_with_labels_file(
    folder: Path, text: str | bytes | None, name: str = "labels.txt", **changes: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = _base(**changes)
    data.pop("labels")
    data["labels_file"] = name
    if text is not None:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
    path = folder / "manifest.json"
    path.write_text(json.dumps(data))
    return path


# --- labels_file -------------------------------------------------------------------------


def test_labels_file_is_read_into_labels(tmp_path: Path) -> None:
    text = "\ufeff# COCO, the first three\r\n  person \r\n# a comment\r\nbicycle\r\ncar\r\n\r\n\n"
    m = read_manifest(_manifest_with_labels_file(tmp_path, text))
    assert m.labels == ["person", "bicycle", "car"]
    assert m.labels_file is None  # read and removed: a bundle written from m is self-contained
    assert m.labels_origin == f"labels_file {tmp_path / 'labels.txt'}"
    assert Manifest.model_validate(m.model_dump()).labels == m.labels


def test_labels_file_in_a_subfolder(tmp_path: Path) -> None:
    m = read_manifest(_manifest_with_labels_file(tmp_path, "face\n", "meta/labels.txt"))
    assert m.labels == ["face"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("labels.txt", None, r"labels_file: labels.txt: not found"),
        ("labels.txt", "", r"labels_file: labels.txt: no labels in it"),
        ("labels.txt", "# only a comment\n\n", r"labels_file: labels.txt: no labels in it"),
        ("labels.txt", "cat\ndog\ncat\n", r"labels.txt: line 3: label 'cat' repeats line 1"),
        ("labels.txt", "cat\n\ndog\n", r"labels.txt: line 2 is blank but labels follow it"),
        ("labels.txt", b"cat\n\xff\xfe\n", r"labels.txt: not UTF-8 text"),
        ("../labels.txt", "cat\n", r"labels_file: \.\./labels\.txt: the path leaves the manifest"),
        ("/etc/hostname", None, r"labels_file: /etc/hostname: give a path relative"),
        ("", None, r"labels_file: : give a path relative"),
    ],
    ids=[
        "missing",
        "empty",
        "comments only",
        "duplicate",
        "blank inside",
        "not utf-8",
        "escapes",
        "absolute",
        "empty name",
    ],
)
def test_bad_labels_file_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str | bytes | None, message: str
) -> None:
    folder = tmp_path / "model"
    if name.startswith("../"):
        (tmp_path / "labels.txt").write_text("cat\n")  # it exists, but outside the folder
        text = None
    path = _manifest_with_labels_file(folder, text, name)
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(path)
    assert str(info.value).startswith(f"{path}: labels_file: ")
    assert "\n" not in str(info.value)


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("cat\n")
    folder = tmp_path / "model"
    path = _manifest_with_labels_file(folder, None)
    (folder / "labels.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ManifestError, match="the path leaves the manifest's folder"):
        read_manifest(path)


def test_labels_and_labels_file_are_exclusive(tmp_path: Path) -> None:
    path = _manifest_with_labels_file(tmp_path, "face\n", labels=["face"])
    data = json.loads(path.read_text())
    data["labels"] = ["face"]
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="labels and labels_file: give one of them, not both"):
        read_manifest(path)


def test_a_manifest_not_read_from_a_file_cannot_name_a_labels_file() -> None:
    data = _base(labels_file="labels.txt")
    data.pop("labels")
    with pytest.raises(
        ManifestError, match=r"^model: manifest: labels_file: .* give labels inline"
    ):
        parse_manifest(data, "model: manifest")  # e.g. an over-the-air manifest


def test_inline_labels_must_be_unique() -> None:
    with pytest.raises(ManifestError, match=r"^x: labels: .*'face' \(index 1\) repeats"):
        parse_manifest(_base(labels=["face", "face"]), "x")


# --- the count check ---------------------------------------------------------------------


def test_check_label_count() -> None:
    m = parse_manifest(_base(labels=["person", "car"]), "m")
    check_label_count(m, 2, "m")
    check_label_count(parse_manifest(_base(labels=[]), "m"), 80, "m")  # no labels: indexes
    with pytest.raises(ManifestError, match=r"^m: labels: 2 labels but the model has 3 classes"):
        check_label_count(m, 3, "m")


def test_a_labels_file_with_the_wrong_count_names_the_file_and_both_counts(
    tmp_path: Path,
) -> None:
    m = read_manifest(_manifest_with_labels_file(tmp_path, "face\nhand\n"))
    backend: Any = FakeBackend(list(hand_made()))  # scores [1, 896, 1]: one class
    with pytest.raises(
        ManifestError,
        match=rf"^blazeface-short: labels_file {tmp_path}/labels.txt: 2 labels but the model "
        "has 1 class;",
    ):
        SsdAnchorDetector(m, backend, params_of("blazeface-short"))


# --- per-label thresholds ----------------------------------------------------------------


def test_label_thresholds_must_name_labels_and_lie_in_0_1() -> None:
    with pytest.raises(ManifestError, match=r"^x: label_thresholds: .*'dog' is not one of"):
        parse_manifest(_base(label_thresholds={"dog": 0.4}), "x")
    with pytest.raises(ManifestError, match=r"^x: label_thresholds: .*between 0 and 1, got 1.5"):
        parse_manifest(_base(label_thresholds={"face": 1.5}), "x")


class FakeDetector:
    """A decoder's contract: every candidate at or above ``score_threshold``."""

    def __init__(self, manifest: Manifest, found: list[tuple[str, float]]) -> None:
        self.manifest = manifest
        self.times = StageTimes()
        self.score_threshold = 0.5
        self.found = found
        self.closed = False

    def detect(self, image: Image) -> list[Detection]:
        return [
            Detection(label, score, (0, 0, 1, 1))
            for label, score in self.found
            if score >= self.score_threshold
        ]

    @property
    def accelerator(self) -> AcceleratorInfo:
        return AcceleratorInfo("fake", (), "cpu")

    def close(self) -> None:
        self.closed = True


COCO3 = ["person", "dog", "cat"]
FOUND = [("person", 0.7), ("person", 0.85), ("dog", 0.35), ("dog", 0.25), ("cat", 0.45),
         ("cat", 0.55)]  # fmt: skip
IMAGE = np.zeros((4, 4, 3), np.uint8)


def _scored(dets: list[Detection]) -> list[tuple[str, float]]:
    return [(d.label, d.score) for d in dets]


def test_each_detection_is_kept_by_its_own_labels_threshold() -> None:
    inner = FakeDetector(parse_manifest(_base(labels=COCO3), "m"), FOUND)
    det = LabelThresholds(inner, {"person": 0.8, "dog": 0.3})
    assert inner.score_threshold == 0.3  # the decoder runs at the lowest threshold
    assert _scored(det.detect(IMAGE)) == [("person", 0.85), ("dog", 0.35), ("cat", 0.55)]
    set_threshold(det, 0.2)  # the default (a device config's `threshold`) moves the cut too
    assert inner.score_threshold == 0.2 and det.score_threshold == 0.2
    assert _scored(det.detect(IMAGE)) == [("person", 0.85), ("dog", 0.35), ("cat", 0.45),
                                          ("cat", 0.55)]  # fmt: skip
    det.close()
    assert inner.closed


def test_config_thresholds_override_the_manifests_per_label() -> None:
    m = parse_manifest(_base(labels=COCO3, label_thresholds={"person": 0.8, "dog": 0.3}), "m")
    inner = FakeDetector(m, FOUND)
    det = with_label_thresholds(inner, m.label_thresholds, "m")
    same = with_label_thresholds(det, {"person": 0.6}, "detectors.d.label_thresholds")
    assert same is det and isinstance(det, LabelThresholds)
    assert det.label_thresholds == {"person": 0.6, "dog": 0.3}
    assert _scored(det.detect(IMAGE)) == [("person", 0.7), ("person", 0.85), ("dog", 0.35),
                                          ("cat", 0.55)]  # fmt: skip
    assert with_label_thresholds(inner, {}, "m") is inner  # nothing per label: no wrapper


def test_with_label_thresholds_refuses_unknown_labels_and_audio() -> None:
    inner = FakeDetector(parse_manifest(_base(labels=COCO3), "m"), FOUND)
    with pytest.raises(InputError, match=r"^k: label_thresholds: \['bird'\] not among"):
        with_label_thresholds(inner, {"bird": 0.5}, "k")
    with pytest.raises(
        InputError, match=r"label_thresholds\.dog: a threshold lies between 0 and 1"
    ):
        with_label_thresholds(inner, {"dog": 0.0}, "k")
    vad: Any = FakeDetector(zoo.get("silero-vad"), [])
    with pytest.raises(InputError, match="apply to image detectors"):
        with_label_thresholds(vad, {"speech": 0.5}, "k")


def test_build_detector_applies_the_manifests_label_thresholds() -> None:
    """hand_made(): two faces, sigmoid(2) = 0.88 and sigmoid(1) = 0.73; face needs 0.8."""
    m = parse_manifest(_base(label_thresholds={"face": 0.8}), "m")
    backend: Any = FakeBackend(list(hand_made()))
    det = build_detector(m, backend, "m")
    assert isinstance(det, LabelThresholds) and isinstance(det.inner, SsdAnchorDetector)
    assert det.inner.score_threshold == 0.8  # one label: decoded as at its own threshold
    (face,) = det.detect(np.zeros((128, 256, 3), np.uint8))  # type: ignore[union-attr]
    assert face.score == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    det.score_threshold = 0.9  # only thresholds.score: face keeps its own 0.8
    assert len(det.detect(np.zeros((128, 256, 3), np.uint8))) == 1  # type: ignore[union-attr]
    assert det.inner.score_threshold == 0.8


def test_labels_without_their_own_threshold_keep_the_default_in_the_cut() -> None:
    inner = FakeDetector(parse_manifest(_base(labels=COCO3), "m"), FOUND)
    det = LabelThresholds(inner, {"person": 0.8, "dog": 0.6, "cat": 0.7})
    assert inner.score_threshold == 0.6  # every label has its own: the default plays no part
    det.score_threshold = 0.2
    assert inner.score_threshold == 0.6
    assert _scored(det.detect(IMAGE)) == [("person", 0.85)]
    det.label_thresholds = {"person": 0.8}  # dog and cat use the default again
    assert inner.score_threshold == 0.2
