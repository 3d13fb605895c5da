"""The trackers' event lifecycle on hand-made observations (frames at 10 frames/s).

Every test runs for both ``TrackingConfig.kind``s: the lifecycle is shared.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from edge.boxes import iou, iou_matrix
from edge.config import TrackingConfig
from edge.tracking import Observation, Tracker

CFG = TrackingConfig(min_hits=3, max_missing=4, update_interval_s=1.0, min_update_gap_s=0.2)


@pytest.fixture(params=["bytetrack", "iou"])
def cfg(request: pytest.FixtureRequest) -> TrackingConfig:
    """CFG of each kind."""
    kind: Literal["bytetrack", "iou"] = request.param
    return CFG.model_copy(update={"kind": kind})


A = (0.1, 0.1, 0.3, 0.3)
B = (0.6, 0.6, 0.9, 0.9)


def run(frames: list[list[Observation]], cfg: TrackingConfig) -> list[tuple[int, str, int]]:
    """(frame, phase, track id) of every step; frame i has capture time i / 10 s."""
    t = Tracker(cfg)
    out: list[tuple[int, str, int]] = []
    for i, obs in enumerate(frames):
        out += [(round(s.ts * 10), s.phase, s.track.id) for s in t.update(obs, i / 10)]
    out += [(round(s.ts * 10), s.phase, s.track.id) for s in t.finish()]
    return out


def face(box: tuple[float, float, float, float] = A, score: float = 0.8) -> Observation:
    return Observation("face", score, box)


def test_starts_after_min_hits_and_ends_after_max_missing(cfg: TrackingConfig) -> None:
    # present in frames 2..9, absent 10..19: start at frame 4 (3rd hit), end at the last one (9)
    frames: list[list[Observation]] = (
        [[] for _ in range(2)] + [[face()] for _ in range(8)] + [[] for _ in range(10)]
    )
    assert run(frames, cfg) == [(4, "start", 1), (9, "end", 1)]


def test_started_at_is_the_first_sighting(cfg: TrackingConfig) -> None:
    t = Tracker(cfg)
    steps = [s for i in range(3) for s in t.update([face()], 5.0 + i)]
    assert [s.phase for s in steps] == ["start"] and steps[0].track.started_at == 5.0


def test_blips_shorter_than_min_hits_make_no_event(cfg: TrackingConfig) -> None:
    frames = [[face()], [face()], [], [face()], [face()], [], [], [], [], []]
    assert run(frames, cfg) == []


def test_a_short_gap_keeps_the_track(cfg: TrackingConfig) -> None:
    frames = [[face()]] * 5 + [[]] * 3 + [[face()]] * 5 + [[]] * 6
    assert run(frames, cfg) == [(2, "start", 1), (12, "end", 1)]


def test_a_still_track_sends_no_periodic_updates(cfg: TrackingConfig) -> None:
    # issue 12 changed this: an unchanged box used to be re-sent every update_interval_s;
    # now a still one (box IoU with the last sent >= update_still_iou) is not
    steady = run([[face()] for _ in range(30)], cfg)
    assert [p for _, p, _ in steady] == ["start", "end"]
    # small jitter (2 % of the box size) is still
    jitter = [[face((0.1 + 0.002 * (i % 3), 0.1, 0.3 + 0.002 * (i % 3), 0.3))] for i in range(30)]
    assert [p for _, p, _ in run(jitter, cfg)] == ["start", "end"]


def test_a_moving_track_updates_every_interval(cfg: TrackingConfig) -> None:
    # 1.5 % of its size per frame: the smoothed box moves past update_still_move (10 %)
    # within 1 s, and not below update_iou_below (0.7, a 17.6 % shift): updates come from
    # the interval
    frames = [[face((0.1 + 0.003 * i, 0.1, 0.3 + 0.003 * i, 0.3))] for i in range(30)]
    steps = run(frames, cfg)
    assert [f for f, p, _ in steps if p == "update"] == [12, 22]


def test_a_big_change_updates_after_the_min_gap(cfg: TrackingConfig) -> None:
    # a big score change allows an update after the min gap (2 frames), not before; the
    # score is smoothed (SMOOTH 0.3): 0.8 → 0.5 shows as 0.71 on the first frame, 0.647
    # on the second (a change of 0.153 >= 0.1)
    frames = [[face()]] * 5 + [[face(score=0.5)]] * 3
    assert run(frames, cfg)[:2] == [(2, "start", 1), (6, "update", 1)]
    # so does a jump of the box (IoU with the last sent below update_iou_below)
    frames = [[face()]] * 3 + [[face((0.2, 0.1, 0.4, 0.3))]] + [[face((0.25, 0.1, 0.45, 0.3))]] * 3
    assert [(f, p) for f, p, _ in run(frames, cfg)][:3] == [(2, "start"), (4, "update"), (6, "end")]


def test_two_faces_two_tracks_and_finish_ends_both(cfg: TrackingConfig) -> None:
    frames = [[face(A), face(B)] for _ in range(5)]
    steps = run(frames, cfg)
    assert sorted(steps) == [(2, "start", 1), (2, "start", 2), (4, "end", 1), (4, "end", 2)]


def test_a_moving_box_keeps_its_id(cfg: TrackingConfig) -> None:
    frames = [[face((0.1 + 0.01 * i, 0.1, 0.3 + 0.01 * i, 0.3))] for i in range(10)]
    assert {tid for _, _, tid in run(frames, cfg)} == {1}


def test_labels_do_not_match_each_other(cfg: TrackingConfig) -> None:
    frames = [[face()] for _ in range(3)] + [[Observation("cat", 0.9, A)] for _ in range(3)]
    steps = run(frames, cfg)
    assert [(p, tid) for _, p, tid in steps] == [("start", 1), ("start", 2), ("end", 1), ("end", 2)]


def test_iou() -> None:
    assert iou(A, A) == 1.0
    assert iou(A, B) == 0.0
    assert abs(iou((0, 0, 2, 1), (1, 0, 3, 1)) - 1 / 3) < 1e-9
    assert iou((0, 0, 0, 1), (0, 0, 0, 1)) == 0.0  # empty union
    # the plain-float iou is iou_matrix's formula
    rng = np.random.default_rng(0)
    a, b = np.sort(rng.random((200, 2, 2)), axis=1), np.sort(rng.random((200, 2, 2)), axis=1)
    boxes_a = a.transpose(0, 2, 1).reshape(200, 4)[:, [0, 2, 1, 3]]
    boxes_b = b.transpose(0, 2, 1).reshape(200, 4)[:, [0, 2, 1, 3]]
    want = np.diag(iou_matrix(boxes_a, boxes_b))
    got = [iou(tuple(x), tuple(y)) for x, y in zip(boxes_a, boxes_b, strict=True)]
    assert np.allclose(got, want, rtol=0, atol=1e-12) and want.max() > 0
