"""tests/support/mot.py on hand-made frames whose figures are counted here by hand."""

from __future__ import annotations

from tests.support.mot import evaluate

A = (0.0, 0.0, 1.0, 1.0)
A2 = (0.05, 0.0, 1.05, 1.0)  # IoU with A 0.90
B = (5.0, 5.0, 6.0, 6.0)


def test_perfect() -> None:
    r = evaluate([({1: A, 2: B}, {7: A, 8: B})] * 4)
    assert (r.gt, r.fp, r.fn, r.idsw, r.frag, r.mota) == (8, 0, 0, 0, 0, 1.0)


def test_an_id_switch_and_a_fragment_and_a_false_positive() -> None:
    frames = [
        ({1: A}, {7: A}),
        ({1: A}, {}),  # FN, coverage interrupted
        ({1: A}, {8: A, 9: B}),  # re-covered by another id: IDSW + Frag; 9 is a FP
        ({1: A}, {8: A}),
    ]
    r = evaluate(frames)
    assert (r.gt, r.fp, r.fn, r.idsw, r.frag) == (4, 1, 1, 1, 1)
    assert r.mota == 1 - (1 + 1 + 1) / 4


def test_a_kept_correspondence_wins_over_a_better_overlap() -> None:
    # frame 2: track 8 overlaps object 1 exactly, but 7 (IoU 0.9) was its track: no switch
    r = evaluate([({1: A}, {7: A}), ({1: A}, {7: A2, 8: A})])
    assert (r.idsw, r.fp) == (0, 1)


def test_below_min_iou_is_no_match() -> None:
    far = (0.6, 0.0, 1.6, 1.0)  # IoU 0.25
    r = evaluate([({1: A}, {7: far})])
    assert (r.fn, r.fp, r.mota) == (1, 1, -1.0)


def test_an_absent_object_is_no_fragment() -> None:
    # object 1 leaves the truth for a frame (hidden): not an interruption of coverage
    r = evaluate([({1: A}, {7: A}), ({}, {}), ({1: A}, {7: A})])
    assert (r.frag, r.fn, r.idsw) == (0, 0, 0)
