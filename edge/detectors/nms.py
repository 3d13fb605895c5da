"""Non-maximum suppression on ``(N, 4)`` xyxy boxes, vectorised with numpy.

``weighted_nms`` is MediaPipe's WEIGHTED algorithm (BlazeFace): every box that
overlaps the best remaining one by more than the threshold is merged into it,
averaged by score; extra columns (keypoints) are averaged the same way.
``nms`` is the plain (hard) algorithm and returns the indices it keeps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.boxes import iou_matrix

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


def iou_one_to_many(box: Floats, boxes: Floats) -> Floats:
    """IoU of ``box`` (4,) with each row of ``boxes`` (N, 4); 0 where the union is empty."""
    out: Floats = iou_matrix(box[None, :4], boxes)[0]
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
    boxes: Floats, scores: Floats, iou_threshold: float, max_detections: int | None = None
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


def class_aware_nms(
    boxes: Floats,
    scores: Floats,
    classes: Ints,
    iou_threshold: float,
    max_detections: int | None = None,
) -> Ints:
    """Hard NMS within each class only (boxes of different classes never suppress each
    other), as torchvision's ``batched_nms`` does it: every class's boxes are shifted by
    ``class × (largest coordinate + 1)`` so that no two classes overlap, then one NMS.
    Returns the kept indices, best first."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.intp)
    span = float(np.max(boxes)) - min(0.0, float(np.min(boxes))) + 1.0
    shifted = (boxes + (classes.astype(np.float32) * span)[:, None]).astype(np.float32)
    return nms(shifted, scores, iou_threshold, max_detections)
