"""A detector's label allow/deny lists and box-area limits (``edge.pipeline.filters``) and
their config checks. ``tests/integration/test_detector_filters.py`` runs them in ``edge run``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise
from pathlib import Path
from typing import Any

import pytest

from edge.config import DetectorConfig, load_config
from edge.detectors.base import Detection
from edge.errors import ConfigError
from edge.models import zoo
from edge.models.manifest import Manifest
from edge.pipeline.filters import DetectionFilter, build_filter

COCO3 = Manifest.model_validate(
    {**zoo.get("blazeface-short").model_dump(), "name": "coco3", "labels": ["person", "dog", "cat"]}
)
W, H = 200, 100  # image area 20000 px


def det(label: str, box: tuple[float, float, float, float] = (0, 0, 10, 10)) -> Detection:
    return Detection(label, 0.9, box)


def kept(f: DetectionFilter, dets: list[Detection]) -> list[str]:
    return [f"{d.label}{d.box}" for d in f.apply(dets, W, H)]


def test_default_filter_keeps_everything_as_is() -> None:
    dets = [det("person"), det("dog", (0, 0, 200, 100))]
    assert DetectionFilter().apply(dets, W, H) is dets


def test_allow_list_keeps_only_its_labels() -> None:
    f = build_filter("d", DetectorConfig(model="m", labels=["person", "cat"]), COCO3)
    assert [d.label for d in f.apply([det("person"), det("dog"), det("cat")], W, H)] == [
        "person",
        "cat",
    ]


def test_deny_list_drops_its_labels() -> None:
    f = build_filter("d", DetectorConfig(model="m", exclude_labels=["dog"]), COCO3)
    assert [d.label for d in f.apply([det("person"), det("dog"), det("cat")], W, H)] == [
        "person",
        "cat",
    ]


def test_an_empty_allow_list_keeps_nothing() -> None:
    f = build_filter("d", DetectorConfig(model="m", labels=[]), COCO3)
    assert f.apply([det("person")], W, H) == []


@pytest.mark.parametrize(
    ("box", "area"),
    [
        ((0, 0, 20, 10), 0.01),  # 200 px of 20000
        ((0, 0, 100, 100), 0.5),
        ((-50, -50, 20, 10), 0.01),  # clipped to the image first
        ((190, 90, 400, 300), 0.005),
        ((0, 0, 200, 100), 1.0),
    ],
)
def test_area_is_the_clipped_box_over_the_image(
    box: tuple[float, float, float, float], area: float
) -> None:
    d = [det("person", box)]
    assert DetectionFilter(min_area=area, max_area=area).apply(d, W, H) == d  # bounds included
    assert DetectionFilter(min_area=area * 1.01).apply(d, W, H) == []
    if area < 1.0:
        assert DetectionFilter(max_area=area * 0.99).apply(d, W, H) == []


def test_labels_and_areas_together() -> None:
    cfg = DetectorConfig(model="m", exclude_labels=["cat"], min_area=0.01, max_area=0.5)
    f = build_filter("d", cfg, COCO3)
    dets = [det("person", (0, 0, 5, 5)), det("person", (0, 0, 50, 50)),
            det("cat", (0, 0, 50, 50)), det("dog", (0, 0, 150, 100))]  # fmt: skip
    assert kept(f, dets) == ["person(0, 0, 50, 50)"]


@pytest.mark.parametrize(
    ("key", "names", "message"),
    [
        (
            "labels",
            ["person", "car"],
            r"^detectors\.d\.labels: 'car' is not a label of model coco3",
        ),
        (
            "exclude_labels",
            ["bird", "car"],
            r"^detectors\.d\.exclude_labels: 'bird', 'car' are not",
        ),
    ],
)
def test_unknown_label_names_the_key_and_lists_the_valid_ones(
    key: str, names: list[str], message: str
) -> None:
    cfg = DetectorConfig.model_validate({"model": "m", key: names})
    with pytest.raises(ConfigError, match=message) as info:
        build_filter("d", cfg, COCO3)
    assert str(info.value).endswith("valid labels: person, dog, cat")


def test_a_model_without_labels_cannot_be_filtered_by_label() -> None:
    bare = COCO3.model_copy(update={"labels": []})
    with pytest.raises(ConfigError, match="lists no labels in its manifest"):
        build_filter("d", DetectorConfig(model="m", labels=["person"]), bare)
    build_filter("d", DetectorConfig(model="m", min_area=0.1), bare)  # areas need no labels


@pytest.mark.parametrize(
    ("keys", "expectation"),
    [
        ({}, does_not_raise()),
        ({"min_area": 0.2, "max_area": 0.2}, does_not_raise()),
        (
            {"min_area": 0.5, "max_area": 0.2},
            pytest.raises(ValueError, match=r"min_area 0\.5 is above"),
        ),
        ({"min_area": -0.1}, pytest.raises(ValueError, match="min_area")),
        ({"max_area": 1.5}, pytest.raises(ValueError, match="max_area")),
        ({"max_area": 0}, pytest.raises(ValueError, match="max_area")),
        (
            {"labels": ["a"], "exclude_labels": ["a"]},
            pytest.raises(ValueError, match=r"both name \['a'\]"),
        ),
        ({"label_thresholds": {"a": 1.0}}, pytest.raises(ValueError, match=r"label_thresholds\.a")),
        ({"label_thresholds": {"a": 0.4}}, does_not_raise()),
    ],
)
def test_detector_config_rules(
    keys: dict[str, Any], expectation: AbstractContextManager[Any]
) -> None:
    with expectation:
        DetectorConfig.model_validate({"model": "m", **keys})


def test_config_file_error_is_one_line_at_the_detector(tmp_path: Path) -> None:
    cfg = tmp_path / "device.toml"
    cfg.write_text(
        'device_id = "d"\n[[streams]]\nname = "cam"\nsource = "0"\ndetectors = ["face"]\n'
        '[detectors.face]\nmodel = "blazeface-short"\nmin_area = 0.3\nmax_area = 0.1\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert "detectors.face" in text and "min_area 0.3 is above max_area 0.1" in text
    assert "\n" not in text.strip()
