"""The face video's stated truth (tests/fixtures/video.py), checked on its MJPG frames with
the zoo's BlazeFace models: faces score well above every threshold the daemon tests set
(0.6, then 0.7 after a reload), the background nothing above 0.5."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detectors import build_detector
from edge.detectors.ssd_anchor import SsdAnchorDetector
from edge.models.resolve import ResolvedModel
from edge.runtime import load_backend
from tests.fixtures.video import DEFAULT_SPANS, face_video

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["blazeface-short", "blazeface-full"])
def test_faces_score_well_above_the_test_thresholds(
    tmp_path: Path, name: str, zoo_model: Callable[[str], ResolvedModel]
) -> None:
    path, spans = face_video(tmp_path / "v.avi", 240, DEFAULT_SPANS)
    model = zoo_model(name)
    det = build_detector(model.manifest, load_backend(model.path), model.origin)
    assert isinstance(det, SsdAnchorDetector)
    det.score_threshold = 0.5
    cap = cv2.VideoCapture(str(path))
    try:
        for index in (0, 40, 120, 160, 230):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            assert ok
            faces = [d for d in det.detect(np.asarray(frame, np.uint8)) if d.label == "face"]
            inside = [s for s in spans if s.first <= index <= s.last]
            if inside:
                assert len(faces) == 1 and faces[0].score >= 0.85, (index, faces)
            else:
                assert faces == [], (index, faces)
    finally:
        cap.release()
        det.close()
