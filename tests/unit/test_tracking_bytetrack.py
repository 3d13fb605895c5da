"""What ByteTrack adds to the IoU tracker, on hand-made observations (10 frames/s).

Each test states the boxes it feeds; the IoU tracker on the same input is the contrast.
"""

from __future__ import annotations

import random
from typing import Literal

import numpy as np
import pytest

from edge import kalman
from edge.config import InvalidConfigError, TrackingConfig, parse_config
from edge.tracking import Observation, Tracker
from tests.support import kalman_ref

Box = tuple[float, float, float, float]


def cfg(kind: Literal["bytetrack", "iou"], **kw: float) -> TrackingConfig:
    return TrackingConfig(kind=kind, min_hits=3, max_missing=6, **kw)


def person(x: float, score: float = 0.8, y: float = 0.4, w: float = 0.1) -> Observation:
    return Observation("person", score, (x, y, x + w, y + 0.2))


def ids(kind: Literal["bytetrack", "iou"], frames: list[list[Observation]]) -> list[list[int]]:
    """Per frame, the ids of the started tracks matched in it, by their box's x."""
    t = Tracker(cfg(kind))
    out = []
    for i, obs in enumerate(frames):
        t.update(obs, i / 10)
        seen = sorted((tr.box[0], tr.id) for tr in t.tracks if tr.started and tr.missing == 0)
        out.append([tid for _, tid in seen])
    return out


def test_a_low_score_box_continues_a_track_but_starts_none() -> None:
    # a person at 0.8 for 4 frames, then at 0.3 (low: 0.1 <= s < 0.5) for 4 frames;
    # a low-score box alone elsewhere (x 0.7) every frame
    frames = [[person(0.1 + 0.01 * i, 0.8 if i < 4 else 0.3), person(0.7, 0.3)] for i in range(8)]
    t = Tracker(cfg("bytetrack"))
    for i, obs in enumerate(frames):
        t.update(obs, i / 10)
    assert [(tr.id, tr.missing, tr.hits) for tr in t.tracks] == [(1, 0, 8)]


def test_a_low_score_box_must_overlap_more() -> None:
    # the 0.3 box moved 0.04 (IoU 0.43 with the prediction < low_iou_threshold 0.5): lost
    frames = [[person(0.1)]] * 4 + [[person(0.14, 0.3)]]
    t = Tracker(cfg("bytetrack"))
    for i, obs in enumerate(frames):
        t.update(obs, i / 10)
    assert [(tr.id, tr.missing) for tr in t.tracks] == [(1, 1)]


def test_a_track_is_refound_where_it_was_predicted_after_an_occlusion() -> None:
    # moving 0.03 a frame (a box 0.1 wide: 30 % of its width, 10 frames/s or a fast object
    # at 5), hidden in frames 6–9, back at frame 10 where constant velocity puts it
    frames = [[] if 6 <= i <= 9 else [person(0.05 + 0.03 * i)] for i in range(16)]
    assert {tid for f in ids("bytetrack", frames) for tid in f} == {1}
    # the IoU tracker's box stayed at frame 5: 0.12 behind, no overlap: a new id
    assert {tid for f in ids("iou", frames) for tid in f} == {1, 2}


def test_crossing_people_keep_their_ids() -> None:
    # two people, same label, walking at each other 0.04 a frame (y 0.40 and 0.45): at the
    # crossing their boxes overlap more with each other than with themselves a frame before
    frames = [
        [person(0.1 + 0.04 * i, 0.85), person(0.7 - 0.04 * i, 0.8, y=0.45)] for i in range(16)
    ]
    byte = ids("bytetrack", frames)
    assert byte[3] == [1, 2] and byte[-1] == [2, 1]  # left-to-right is 1 before and after
    iou = ids("iou", frames)
    assert iou[3] == [1, 2] and iou[-1] == [1, 2]  # the IoU tracker swapped them


def test_the_filter_learns_a_constant_velocity() -> None:
    boxes = [(0.1 + 0.02 * i, 0.3, 0.2 + 0.02 * i, 0.5) for i in range(12)]
    f = kalman.BoxFilter(boxes[0])
    for b in boxes[1:]:
        f.predict()
        f.update(b)
    f.predict()
    assert f.box() == pytest.approx([0.34, 0.3, 0.44, 0.5], abs=0.005)
    ref = np.array(boxes)
    assert np.allclose(kalman_ref.to_xyxy(kalman_ref.to_xyah(ref)), ref)


def test_the_per_track_filter_is_bytetracks_batched_filter() -> None:
    """Random walks, dropped frames, half and fractional steps, lost tracks holding their
    height: state and covariance agree with the batched numpy filter to 1e-12."""
    rng = random.Random(3)
    for _ in range(200):
        x, y = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
        box = (x, y, x + rng.uniform(0.01, 0.2), y + rng.uniform(0.01, 0.2))
        f = kalman.BoxFilter(box)
        mean, cov = kalman_ref.initiate(np.array([box]))
        for _ in range(30):
            steps, hold = rng.choice([1.0, 1.0, 2.0, 0.5, 3.7]), rng.random() < 0.2
            if hold:
                mean[0, 7] = 0.0
            f.predict(steps, hold_height=hold)
            mean, cov = kalman_ref.predict(mean, cov, steps)
            if rng.random() < 0.7:
                dx, dy = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)
                x1, y1 = box[0] + dx, box[1] + dy
                box = (
                    x1, y1, max(box[2] + dx + rng.uniform(-0.01, 0.01), x1 + 0.01),
                    max(box[3] + dy + rng.uniform(-0.01, 0.01), y1 + 0.01),
                )  # fmt: skip
                f.update(box)
                mean, cov = kalman_ref.update(mean, cov, np.array([box]))
            m, c = kalman_ref.state_of(f)
            assert np.allclose(m, mean[0], rtol=1e-12, atol=1e-15)
            assert np.allclose(c, cov[0], rtol=1e-12, atol=1e-18)
            assert np.allclose(f.box(), kalman_ref.to_xyxy(mean)[0], rtol=0, atol=1e-12)


def test_low_score_not_below_high_score_is_refused_at_its_line() -> None:
    text = (
        'device_id = "t"\n[[streams]]\nname = "a"\nsource = "0"\ndetectors = ["f"]\n'
        '[detectors.f]\nmodel = "blazeface-short"\n[tracking]\nhigh_score = 0.4\nlow_score = 0.5\n'
    )
    with pytest.raises(InvalidConfigError) as err:
        parse_config(text, "d.toml")
    (line,) = err.value.problems
    assert line.startswith("d.toml:") and "tracking" in line
    assert "low_score (0.5) must be below high_score (0.4)" in line


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="bytetrack"):
        TrackingConfig.model_validate({"kind": "sort"})


def test_a_lost_track_is_not_refound_by_a_low_score_box() -> None:
    # ByteTrack's rule: stage 2 only serves tracks matched in the previous frame
    frames = [[person(0.1)]] * 4 + [[]] + [[person(0.1, 0.3)]] * 2
    t = Tracker(cfg("bytetrack"))
    for i, obs in enumerate(frames):
        t.update(obs, i / 10)
    assert [(tr.id, tr.missing) for tr in t.tracks] == [(1, 3)]


@pytest.mark.parametrize("kind", ["bytetrack", "iou"])
def test_zero_area_boxes_neither_crash_nor_start_events(kind: Literal["bytetrack", "iou"]) -> None:
    flat = Observation("person", 0.9, (0.1, 0.1, 0.3, 0.1))
    t = Tracker(cfg(kind))
    steps = [s for i in range(10) for s in t.update([flat, person(0.5)], i / 10)]
    assert [(s.phase, s.track.id) for s in steps] == [("start", 2)]


def test_a_dropped_frame_is_predicted_two_intervals_ahead() -> None:
    # 10 frames/s, 0.04 a frame (a box 0.1 wide); frames 8–9 and 13–14 never arrive (a
    # busy device): the object is 0.12 further at the next frame, where a one-frame
    # prediction (0.04) overlaps it by IoU 0.11, under iou_threshold 0.3
    kept = [i for i in range(20) if i not in (8, 9, 13, 14)]
    t = Tracker(cfg("bytetrack"))
    for i in kept:
        t.update([person(0.02 + 0.04 * i)], i / 10)
    assert [(tr.id, tr.hits) for tr in t.tracks] == [(1, len(kept))]


def test_a_box_leaving_the_frame_at_speed_stays_normalized() -> None:
    """The Kalman state overshoots the left edge (the object moved 0.15 a frame, then is
    seen pinned at x = 0): published boxes, and the events built from them, stay in [0, 1]
    (an out-of-image box once made ``Event`` refuse every event of the stream)."""
    t = Tracker(cfg("bytetrack"))
    xs = [0.6, 0.45, 0.3, 0.15, 0.0, 0.0, 0.0]
    boxes = []
    for i, x in enumerate(xs):
        t.update([Observation("person", 0.9, (x, 0.0, x + 0.1, 0.98 + 0.01 * (i % 2)))], i / 10)
        boxes += [tr.box for tr in t.tracks]
    for i in range(len(xs), len(xs) + 3):  # missing: predicted further left, then ended
        t.update([], i / 10)
        boxes += [tr.box for tr in t.tracks]
    assert boxes
    for x1, y1, x2, y2 in boxes:
        assert 0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0, (x1, y1, x2, y2)
