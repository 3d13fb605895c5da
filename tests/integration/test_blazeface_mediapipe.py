"""edgewise's BlazeFace (zoo manifests, ``input.resampling = "warp"``) against MediaPipe's
own face detection graph (mediapipe 0.10.21 in its reference venv, built on first use by
tests/support/ref_venv.py), same model file, same decoded pixels, six photos with one face
each (tests/support/mediapipe_faces.py says which face is where).

Measured: scores agree to 2e-7 and boxes to 6e-5 px (the resampling is bit-exact); the
previous ``resize`` path differed by up to 0.045 in score and 8.7 px in box.
MediaPipe's full-range graph thresholds at 0.6 whatever ``min_detection_confidence`` says
(its inner node's option wins), as the blazeface-full manifest does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edge.detectors import build_detector
from edge.detectors.ssd_anchor import SsdAnchorDetector
from edge.models.resolve import ResolvedModel
from edge.runtime import load_backend
from tests.support.mediapipe_faces import FACES, Rgb, mediapipe_faces, photos

pytestmark = pytest.mark.slow
SCORE_TOLERANCE = 0.01
BOX_TOLERANCE_PX = 1.0
GRAPH = {"blazeface-short": "short", "blazeface-full": "full"}


@pytest.fixture(scope="module")
def images() -> dict[str, Rgb]:
    return photos()


@pytest.fixture(scope="module", params=sorted(GRAPH))
def pair(
    request: pytest.FixtureRequest,
    zoo_model: Callable[[str], ResolvedModel],
    images: dict[str, Rgb],
) -> Any:
    model = zoo_model(request.param)
    det = build_detector(model.manifest, load_backend(model.path), model.origin)
    assert isinstance(det, SsdAnchorDetector)
    ref = mediapipe_faces(model.path, GRAPH[request.param], det.score_threshold, images)
    yield det, ref
    det.close()


def test_zoo_blazeface_uses_mediapipe_resampling(pair: Any) -> None:
    det, _ = pair
    assert det.manifest.input.resampling == "warp"


@pytest.mark.parametrize("name", sorted(FACES))
def test_matches_mediapipe_graph(pair: Any, images: dict[str, Rgb], name: str) -> None:
    det, ref = pair
    theirs = ref[name]
    assert len(theirs) == 1, theirs  # the one face, where FACES says (box centre inside)
    x1, y1, x2, y2 = theirs[0]["box"]
    fx1, fy1, fx2, fy2 = FACES[name]
    assert fx1 < (x1 + x2) / 2 < fx2 and fy1 < (y1 + y2) / 2 < fy2, (theirs, FACES[name])
    ours = det.detect(np.ascontiguousarray(images[name][..., ::-1]))
    assert len(ours) == len(theirs), (ours, theirs)
    for d, r in zip(ours, theirs, strict=True):
        assert abs(d.score - r["score"]) <= SCORE_TOLERANCE, (d.score, r["score"])
        assert np.max(np.abs(np.subtract(d.box, r["box"]))) <= BOX_TOLERANCE_PX, (d.box, r)
        assert d.keypoints is not None
        kp_err = np.max(np.abs(np.subtract(d.keypoints, r["keypoints"])))
        assert kp_err <= BOX_TOLERANCE_PX, (d.keypoints, r["keypoints"])
