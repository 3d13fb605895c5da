"""Non-maximum suppression on ``(N, 4)`` xyxy boxes, vectorised with numpy.

``weighted_nms`` is MediaPipe's WEIGHTED algorithm (BlazeFace): every box that
overlaps the best remaining one by more than the threshold is merged into it,
averaged by score; extra columns (keypoints) are averaged the same way.
``nms`` is the plain (hard) algorithm and returns the indices it keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edge.boxes import iou_matrix

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]
AnyFloats = npt.NDArray[np.floating[Any]]


def iou_one_to_many(box: AnyFloats, boxes: AnyFloats) -> AnyFloats:
    """IoU of ``box`` (4,) with each row of ``boxes`` (N, 4); 0 where the union is empty."""
    out: AnyFloats = iou_matrix(box[None, :4], boxes)[0]
    return out


def weighted_nms(
    values: Floats, scores: Floats, iou_threshold: float, max_detections: int | None = None
) -> tuple[Floats, Floats, Ints]:
    """Merge overlapping detections.

    ``values`` is (N, D) with the xyxy box in its first 4 columns. Returns the
    merged values (M, D), each cluster's best score (M,) and the index of each
    cluster's best detection (M,), best first. Unlike MediaPipe, a zero-area
    top box still absorbs itself instead of ending the loop.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = values[:, :4]
    merged: list[Floats] = []
    kept: list[int] = []
    while order.size and (max_detections is None or len(kept) < max_detections):
        top = int(order[0])
        overlap = iou_one_to_many(boxes[top], boxes[order]) > iou_threshold
        overlap[0] = True
        members = order[overlap]
        if members.size == 1:
            merged.append(values[top])
        else:
            w = scores[members]
            merged.append((w @ values[members]) / w.sum())
        kept.append(top)
        order = order[~overlap]
    if not kept:
        return (
            np.zeros((0, values.shape[1]), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.intp),
        )
    idx = np.asarray(kept, dtype=np.intp)
    return np.stack(merged).astype(np.float32, copy=False), scores[idx], idx


def nms(
    boxes: Floats | npt.NDArray[np.float64],
    scores: Floats,
    iou_threshold: float,
    max_detections: int | None = None,
) -> Ints:
    """Indices of the boxes kept by hard NMS, best first."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size and (max_detections is None or len(kept) < max_detections):
        top = int(order[0])
        kept.append(top)
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[top], boxes[rest]) <= iou_threshold]
    return np.asarray(kept, dtype=np.intp)


def batched_nms(
    boxes: Floats,
    scores: Floats,
    classes: Ints,
    iou_threshold: float,
    max_detections: int | None = None,
    *,
    class_agnostic: bool = False,
) -> Ints:
    """Hard NMS within each class (or across classes with ``class_agnostic``), best first.

    Per-class suppression in one pass: each class's boxes are moved by its index times a
    span larger than every box, so boxes of different classes never overlap (the offset
    trick of torchvision's ``batched_nms`` and Ultralytics).
    """
    if boxes.shape[0] == 0 or class_agnostic:
        return nms(boxes, scores, iou_threshold, max_detections)
    span = float(np.abs(boxes).max()) * 2.0 + 1.0
    moved = boxes.astype(np.float64) + (classes.astype(np.float64) * span)[:, None]
    return nms(moved, scores, iou_threshold, max_detections)
