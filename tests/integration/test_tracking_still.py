"""A parked object makes one event: BlazeFace short on a still face, 10 frames/s.

The sequence (made here, seeded): scikit-image's ``coffee`` with the astronaut's head
(tests/fixtures/video.py) pasted at (300, 150) for 30 s, each frame shaken by up to
±2 px, with sensor noise (σ 6) and JPEG at quality 70, so BlazeFace's box and score
jitter as on a real camera (measured: centre up to 15 % of the box size, score
0.67–0.82). Then the face drives off to the right at 20 px a frame, out of the frame.

Truth: one track; it starts on the 3rd frame, sends no update while parked, and ends
when it has left. The rule before issue 12 (re-send every update_interval_s) is the
contrast: about one update a second.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import pytest

from edge.config import TrackingConfig
from edge.detectors import load_detector
from edge.tracking import Observation, Step, Tracker
from tests.fixtures.video import H, W, background, face_patch

pytestmark = pytest.mark.slow
FPS, PARKED, LEAVING = 10, 300, 20


@pytest.fixture(scope="module")
def observations() -> list[list[Observation]]:
    bg, patch = background(), face_patch()
    rng = np.random.default_rng(7)
    _, det = load_detector("blazeface-short", threads=1)
    out: list[list[Observation]] = []
    for i in range(PARKED + LEAVING):
        frame = bg.copy()
        dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
        x = 300 + dx + max(0, i - PARKED + 1) * 20
        side = patch.shape[0]
        w = min(side, W - x)
        if w > 0:
            frame[150 + dy : 150 + side + dy, x : x + w] = patch[:, :w]
        noisy = np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
        jpeg = cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], 1)
        dets = det.detect(np.asarray(jpeg, np.uint8))  # type: ignore[union-attr]  # an image detector
        out.append(
            [
                Observation(
                    d.label, d.score, (d.box[0] / W, d.box[1] / H, d.box[2] / W, d.box[3] / H)
                )
                for d in dets
            ]
        )
    det.close()
    return out


def steps(obs: list[list[Observation]], cfg: TrackingConfig) -> list[Step]:
    t = Tracker(cfg)
    out = [s for i, o in enumerate(obs) for s in t.update(o, i / FPS)]
    return out + t.finish()


@pytest.mark.parametrize("kind", ["bytetrack", "iou"])
def test_a_parked_face_starts_once_sends_no_updates_and_ends_when_it_leaves(
    observations: list[list[Observation]], kind: Literal["bytetrack", "iou"]
) -> None:
    assert sum(1 for o in observations[:PARKED] if o) >= PARKED - 3  # BlazeFace sees it
    got = steps(observations, TrackingConfig(kind=kind))
    frames = [(round(s.ts * FPS), s.phase, s.track.id) for s in got]
    print(kind, frames)
    assert [(f, p) for f, p, _ in frames if p == "start"] == [(2, "start")]
    assert [f for f, p, _ in frames if p == "update" and f < PARKED] == []
    (end,) = [f for f, p, _ in frames if p == "end"]
    assert PARKED <= end < PARKED + LEAVING  # seen driving off, then gone
    assert {tid for _, _, tid in frames} == {1}


def test_the_old_rule_sends_an_update_every_second(observations: list[list[Observation]]) -> None:
    old = TrackingConfig(kind="iou", update_still_move=1e-9)  # every box counts as moved
    updates = [s for s in steps(observations[:PARKED], old) if s.phase == "update"]
    print("updates in 30 s parked, the old rule:", len(updates))
    assert len(updates) >= 25  # 30 s parked, update_interval_s 1 s
