"""ByteTrack against the IoU tracker on a scene with known tracks, at 10 and 5 frames/s.

Ground truth: tests/fixtures/mot_scene.py (real photo cut-outs crossing over ``rocket``:
two people crossing, one hidden behind the other; a cat behind a pillar; a parked cup).
Detections: that truth with seeded noise (jitter, misses, low-score frames, false
positives, a lasting low-score false "person"), five seeds. Figures: tests/support/mot.py
(MOTA = 1 − (FN + FP + IDSW) / GT; a track counts in a frame when it is started and
matched in that frame).

Both trackers keep a lost track for 1 s (``max_missing`` = the frame rate), the rest of
TrackingConfig at its defaults. The IoU tracker is run as it is deployed today, behind a
detector threshold of 0.5 (= ByteTrack's ``high_score``), and also fed every box down to
0.1 (what ByteTrack gets): it then turns the lasting low-score false positive into events.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from tests.fixtures.mot_scene import SCENE, W, background, patches, render, scored_frames, truth
from tests.support.mot import MotResult, evaluate

SEEDS = range(5)


def track(kind: Literal["bytetrack", "iou"], fps: int, seed: int, min_score: float) -> MotResult:
    return evaluate(scored_frames(kind, fps, seed, min_score))


@pytest.mark.parametrize("fps", [10, 5])
def test_bytetrack_switches_fewer_ids_and_is_not_less_accurate(fps: int) -> None:
    rows = {
        "bytetrack (boxes >= 0.1)": [track("bytetrack", fps, s, 0.1) for s in SEEDS],
        "iou (boxes >= 0.5)": [track("iou", fps, s, 0.5) for s in SEEDS],
        "iou (boxes >= 0.1)": [track("iou", fps, s, 0.1) for s in SEEDS],
    }
    report = [f"{fps} frames/s, {len(SEEDS)} seeds:"]
    for name, rs in rows.items():
        mota = [r.mota for r in rs]
        report.append(
            f"  {name:26s} MOTA {np.mean(mota):.3f} (min {min(mota):.3f})"
            f"  IDSW {sum(r.idsw for r in rs)}  Frag {sum(r.frag for r in rs)}"
            f"  FN {sum(r.fn for r in rs)}  FP {sum(r.fp for r in rs)}  GT {sum(r.gt for r in rs)}"
        )
    text = "\n".join(report)
    print(text)
    byte, *others = rows.values()
    for rs in others:
        assert sum(r.idsw for r in byte) < sum(r.idsw for r in rs), text
        assert all(b.mota >= o.mota for b, o in zip(byte, rs, strict=True)), text


def test_the_truth_is_where_the_cut_outs_are_drawn() -> None:
    """A fully visible object's box holds its cut-out, pixel for pixel, in the frame."""
    bg, cut = background(), patches()
    checked = 0
    for t, seen in truth(5)[::7]:
        frame = render(t, bg, cut)
        for s in seen:
            if s.visible == 1.0 and s.box[0] >= 0 and s.box[2] <= W:
                x, y = round(s.box[0]), round(s.box[1])
                p = cut[s.id]
                assert np.array_equal(frame[y : y + p.shape[0], x : x + p.shape[1]], p), (t, s)
                checked += 1
    assert checked > 10


def test_the_scene_has_the_events_it_claims() -> None:
    frames = truth(10)
    hidden = {
        m.id: [t for t, seen in frames if m.box(t) and m.id not in {s.id for s in seen}]
        for m in SCENE
    }
    assert hidden[1] == []  # the cup is never hidden
    assert 0.3 <= len(hidden[2]) / 10 <= 0.6  # the cat behind the pillar
    assert 0.2 <= len(hidden[3]) / 10 <= 0.5  # person 3 behind person 4
    assert hidden[4] == []
