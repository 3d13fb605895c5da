"""PP-OCRv4 text detection (zoo ``ppocr-det``) on real photos with text drawn on them.

Ground truth: every drawn line's box from ``cv2.getTextSize`` (see
``tests/fixtures/text_scene.py``). Negative photos (scikit-image ``astronaut``,
``camera``, ``rocket``) give no boxes at the default thresholds; ``coffee`` does
not qualify: the spoon's highlight scores 0.68.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from edge.boxes import iou
from edge.detectors import build_detector
from edge.detectors.db_text import DBTextDetector
from edge.models.resolve import ResolvedModel
from edge.runtime import BackendOptions, load_backend
from tests.fixtures.text_scene import ASTRONAUT_LINES, Box, astronaut_scene, photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector(zoo_model: Callable[[str], ResolvedModel]) -> Iterator[DBTextDetector]:
    r = zoo_model("ppocr-det")
    det = build_detector(r.manifest, load_backend(r.path, BackendOptions(threads=1)), r.origin)
    assert isinstance(det, DBTextDetector)
    yield det
    det.close()


@pytest.fixture(autouse=True)
def default_threshold(detector: DBTextDetector) -> None:
    detector.score_threshold = detector.params.box_thresh


def assert_matches(found: list[Box], truth: list[Box]) -> None:
    """Every true line has a detection with IoU ≥ 0.5, and every detection is such a match."""
    for t in truth:
        best = max((iou(t, f) for f in found), default=0.0)
        assert best >= 0.5, f"line {t} not found (best IoU {best:.2f}) among {found}"
    for f in found:
        best = max(iou(t, f) for t in truth)
        assert best >= 0.5, f"detection {f} matches no text line (best IoU {best:.2f})"
    assert len(found) == len(truth)


def test_every_drawn_line_is_found_and_nothing_else(detector: DBTextDetector) -> None:
    image, truth = astronaut_scene()
    dets = detector.detect(image)
    assert_matches([d.box for d in dets], truth)
    for d in dets:
        assert d.label == "text" and 0.5 <= d.score <= 1.0
        assert d.polygon is not None and len(d.polygon) == 4
        xs, ys = [p[0] for p in d.polygon], [p[1] for p in d.polygon]
        assert d.box == (min(xs), min(ys), max(xs), max(ys))
    assert set(detector.times.ms) == {"pre", "invoke", "post"}
    assert [d.box[1] for d in dets] == sorted(d.box[1] for d in dets)  # top down


@pytest.mark.parametrize(("w", "h"), [(640, 480), (800, 500), (1280, 720)])
def test_boxes_follow_a_non_uniform_resize(detector: DBTextDetector, w: int, h: int) -> None:
    # The 512×512 scene stretched to w×h; the model input is then limit_side 736 on the
    # short side, rounded to 32 (e.g. 800×500 → 1184×736), so x and y map back with
    # different scales. The true boxes stretch by the same factors.
    image, truth = astronaut_scene()
    sx, sy = w / 512, h / 512
    stretched = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
    scaled = [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in truth]
    assert_matches([d.box for d in detector.detect(stretched)], scaled)


@pytest.mark.parametrize("name", ["astronaut", "camera", "rocket"])
def test_photo_without_drawn_text_gives_no_boxes(detector: DBTextDetector, name: str) -> None:
    assert detector.detect(photo(name)) == []


def test_raising_the_threshold_drops_exactly_the_weaker_boxes(detector: DBTextDetector) -> None:
    image, _ = astronaut_scene()
    everything = detector.detect(image)
    assert len(everything) == len(ASTRONAUT_LINES)
    cut = float(np.median([d.score for d in everything]))
    detector.score_threshold = cut
    kept = detector.detect(image)
    assert sorted(d.box for d in kept) == sorted(d.box for d in everything if d.score >= cut)
    assert 0 < len(kept) < len(everything)


@pytest.mark.parametrize(("name", "at_least"), [("page", 5), ("text", 1)])
def test_printed_text_photos_have_text(detector: DBTextDetector, name: str, at_least: int) -> None:
    # ``page`` is a scanned page with several lines of printed text (5 found at the
    # default thresholds); ``text`` has hand-painted and printed words.
    image = photo(name)
    dets = detector.detect(image)
    assert len(dets) >= at_least
    h, w = image.shape[:2]
    assert all(0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h for d in dets)
