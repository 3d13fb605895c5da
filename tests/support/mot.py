"""CLEAR-MOT figures of a tracker's output against ground truth (Bernardin, Stiefelhagen 2008).

Per frame, a ground-truth object and a hypothesis (a reported track) correspond when their
IoU is at least ``min_iou`` (0.5). Correspondences of the previous frame are kept while
still valid; the rest are made by minimum-cost assignment on 1 − IoU. Then:

- FN: ground-truth objects without a hypothesis; FP: hypotheses without an object;
- IDSW: an object matched to a different track id than the last one it was matched to;
- Frag: an object's coverage interrupted: matched, then unmatched in a frame where it is
  present, then matched again (each interruption counts once, as py-motmetrics does);
- MOTA = 1 − (FN + FP + IDSW) / GT, GT = the number of object-frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.assignment import assign
from edge.boxes import iou_matrix

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class MotResult:
    gt: int
    fp: int
    fn: int
    idsw: int
    frag: int

    @property
    def mota(self) -> float:
        return 1.0 - (self.fn + self.fp + self.idsw) / self.gt

    def line(self) -> str:
        return (
            f"MOTA {self.mota:.3f}  IDSW {self.idsw}  Frag {self.frag}  "
            f"FN {self.fn}  FP {self.fp}  (GT {self.gt})"
        )


def evaluate(
    frames: list[tuple[dict[int, Box], dict[int, Box]]], min_iou: float = 0.5
) -> MotResult:
    """``frames``: per frame, (object id → box, track id → box), in any one unit."""
    gt = fp = fn = idsw = frag = 0
    prev: dict[int, int] = {}  # object → track, in the previous frame
    last: dict[int, int] = {}  # object → the last track it was matched to
    was_tracked: dict[int, bool] = {}  # object → matched in the last frame it was present
    for objs, hyps in frames:
        pairs: dict[int, int] = {}
        for o, h in prev.items():
            if o in objs and h in hyps and _iou(objs[o], hyps[h]) >= min_iou:
                pairs[o] = h
        free_o = [o for o in objs if o not in pairs]
        used_h = set(pairs.values())
        free_h = [h for h in hyps if h not in used_h]
        if free_o and free_h:
            m = iou_matrix(
                np.array([objs[o] for o in free_o], np.float64),
                np.array([hyps[h] for h in free_h], np.float64),
            ).astype(np.float64)
            for r, c in assign(1.0 - m, 1.0 - min_iou):
                pairs[free_o[r]] = free_h[c]
        gt += len(objs)
        fn += len(objs) - len(pairs)
        fp += len(hyps) - len(pairs)
        for o in objs:
            got = pairs.get(o)
            if got is not None:
                if o in last and last[o] != got:
                    idsw += 1
                if o in last and not was_tracked.get(o, True):
                    frag += 1
                last[o] = got
            was_tracked[o] = got is not None
        prev = pairs
    return MotResult(gt, fp, fn, idsw, frag)


def _iou(a: Box, b: Box) -> float:
    return float(iou_matrix(np.array([a], np.float64), np.array([b], np.float64))[0, 0])
