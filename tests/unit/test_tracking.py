"""The IoU tracker's event lifecycle on hand-made observations (frames at 10 frames/s)."""

from __future__ import annotations

from edge.boxes import iou
from edge.config import TrackingConfig
from edge.tracking import Observation, Tracker

CFG = TrackingConfig(min_hits=3, max_missing=4, update_interval_s=1.0, min_update_gap_s=0.2)
A = (0.1, 0.1, 0.3, 0.3)
B = (0.6, 0.6, 0.9, 0.9)


def run(frames: list[list[Observation]], cfg: TrackingConfig = CFG) -> list[tuple[int, str, int]]:
    """(frame, phase, track id) of every step; frame i has capture time i / 10 s."""
    t = Tracker(cfg)
    out: list[tuple[int, str, int]] = []
    for i, obs in enumerate(frames):
        out += [(round(s.ts * 10), s.phase, s.track.id) for s in t.update(obs, i / 10)]
    out += [(round(s.ts * 10), s.phase, s.track.id) for s in t.finish()]
    return out


def face(box: tuple[float, float, float, float] = A, score: float = 0.8) -> Observation:
    return Observation("face", score, box)


def test_starts_after_min_hits_and_ends_after_max_missing() -> None:
    # present in frames 2..9, absent 10..19: start at frame 4 (3rd hit), end at the last one (9)
    frames: list[list[Observation]] = (
        [[] for _ in range(2)] + [[face()] for _ in range(8)] + [[] for _ in range(10)]
    )
    assert run(frames) == [(4, "start", 1), (9, "end", 1)]


def test_started_at_is_the_first_sighting() -> None:
    t = Tracker(CFG)
    steps = [s for i in range(3) for s in t.update([face()], 5.0 + i)]
    assert [s.phase for s in steps] == ["start"] and steps[0].track.started_at == 5.0


def test_blips_shorter_than_min_hits_make_no_event() -> None:
    frames = [[face()], [face()], [], [face()], [face()], [], [], [], [], []]
    assert run(frames) == []


def test_a_short_gap_keeps_the_track() -> None:
    frames = [[face()]] * 5 + [[]] * 3 + [[face()]] * 5 + [[]] * 6
    assert run(frames) == [(2, "start", 1), (12, "update", 1), (12, "end", 1)]  # 1 s after start


def test_updates_at_most_every_interval_unless_it_changes() -> None:
    steady = run([[face()] for _ in range(30)])
    assert [p for _, p, _ in steady] == ["start", "update", "update", "end"]
    assert [f for f, p, _ in steady if p == "update"] == [12, 22]
    # a big score change allows an update after the min gap (2 frames), not before
    frames = [[face()]] * 5 + [[face(score=0.5)]] * 3
    assert run(frames)[:2] == [(2, "start", 1), (5, "update", 1)]


def test_two_faces_two_tracks_and_finish_ends_both() -> None:
    frames = [[face(A), face(B)] for _ in range(5)]
    steps = run(frames)
    assert sorted(steps) == [(2, "start", 1), (2, "start", 2), (4, "end", 1), (4, "end", 2)]


def test_a_moving_box_keeps_its_id() -> None:
    frames = [[face((0.1 + 0.01 * i, 0.1, 0.3 + 0.01 * i, 0.3))] for i in range(10)]
    assert {tid for _, _, tid in run(frames)} == {1}


def test_labels_do_not_match_each_other() -> None:
    frames = [[face()] for _ in range(3)] + [[Observation("cat", 0.9, A)] for _ in range(3)]
    steps = run(frames)
    assert [(p, tid) for _, p, tid in steps] == [("start", 1), ("start", 2), ("end", 1), ("end", 2)]


def test_iou() -> None:
    assert iou(A, A) == 1.0
    assert iou(A, B) == 0.0
    assert abs(iou((0, 0, 2, 1), (1, 0, 3, 1)) - 1 / 3) < 1e-9
