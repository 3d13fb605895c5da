"""A faithful numpy port of NanoDet's own Python post-processing (test-only reference).

Ported line by line from RangiLyu/nanodet (Apache-2.0), legacy v0.x, the code that
NanoDet-m's weights were trained and evaluated with:
- ``nanodet/model/head/gfl_head.py``: ``GFLHead.get_bboxes_single`` (per level: the
  cell centres from ``get_single_level_center_point``, ``(arange(w) + 0.5) * stride``;
  ``distribution_project`` × stride; ``nms_pre = 1000`` top-k by max score;
  ``distance2bbox`` clipped to the input; a dummy background column; then
  ``multiclass_nms(score_thr=0.05, iou_threshold=0.6, max_num=100)``);
- ``Integral.forward``: softmax over the ``reg_max + 1`` bins, ``F.linear`` with
  ``linspace(0, reg_max, reg_max + 1)``;
- ``nanodet/util/box_transform.py``: ``distance2bbox``;
- ``nanodet/model/module/nms.py``: ``multiclass_nms`` and ``batched_nms`` (the
  class-offset trick with ``max_coordinate + 1``), with torchvision's ``nms``
  (greedy, suppress IoU > threshold) written out.

The ONNX/TF.js export already applies the sigmoid to the class scores, so the
``.sigmoid()`` of ``get_bboxes_single`` is skipped (``scores_are_sigmoid``). It shares
no code with ``edge.detectors.gfl``: it is what that decoder is checked against.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float32]


def get_single_level_center_point(
    featmap_size: tuple[int, int], stride: int, offset: float = 0.5
) -> tuple[F, F]:
    h, w = featmap_size
    x_range = (np.arange(w, dtype=np.float32) + offset) * stride
    y_range = (np.arange(h, dtype=np.float32) + offset) * stride
    y, x = np.meshgrid(y_range, x_range, indexing="ij")  # torch.meshgrid is "ij"
    return y.flatten(), x.flatten()


def integral(x: F, reg_max: int) -> F:
    x = x.reshape(-1, reg_max + 1)
    x = np.exp(x - x.max(axis=1, keepdims=True))
    x = x / x.sum(axis=1, keepdims=True)  # F.softmax(dim=1)
    project = np.linspace(0, reg_max, reg_max + 1, dtype=np.float32)
    out: F = (x @ project).reshape(-1, 4)  # F.linear(x, project)
    return out


def distance2bbox(points: F, distance: F, max_shape: tuple[int, int]) -> F:
    x1 = np.clip(points[..., 0] - distance[..., 0], 0, max_shape[1])
    y1 = np.clip(points[..., 1] - distance[..., 1], 0, max_shape[0])
    x2 = np.clip(points[..., 0] + distance[..., 2], 0, max_shape[1])
    y2 = np.clip(points[..., 1] + distance[..., 3], 0, max_shape[0])
    return np.stack([x1, y1, x2, y2], -1)


def torchvision_nms(boxes: F, scores: F, iou_threshold: float) -> npt.NDArray[np.int64]:
    """Greedy NMS by descending score; a box is dropped when its IoU with a kept one is
    above the threshold (torchvision.ops.nms, whose IoU uses (x2 - x1) (y2 - y1))."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[:, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[:, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        union = areas[i] + areas - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        over = iou > iou_threshold
        over[i] = False
        suppressed |= over
    return np.asarray(keep, np.int64)


def multiclass_nms(
    multi_bboxes: F, multi_scores: F, score_thr: float, iou_threshold: float, max_num: int
) -> tuple[F, npt.NDArray[np.int64]]:
    num_classes = multi_scores.shape[1] - 1
    bboxes = np.broadcast_to(multi_bboxes[:, None], (multi_scores.shape[0], num_classes, 4))
    scores = multi_scores[:, :-1]
    valid_mask = scores > score_thr
    bboxes = bboxes[valid_mask].reshape(-1, 4)
    scores = scores[valid_mask]
    labels = np.nonzero(valid_mask)[1]
    if bboxes.size == 0:
        return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
    # batched_nms: offsets so that boxes of different classes never overlap
    max_coordinate = bboxes.max()
    boxes_for_nms = bboxes + (labels.astype(np.float32) * (max_coordinate + 1))[:, None]
    keep = torchvision_nms(boxes_for_nms, scores, iou_threshold)
    dets = np.concatenate([bboxes[keep], scores[keep, None]], -1)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return dets.astype(np.float32), labels[keep]


def get_bboxes_single(
    cls_scores: list[F],
    bbox_preds: list[F],
    strides: list[int],
    img_shape: tuple[int, int],
    reg_max: int,
    *,
    scores_are_sigmoid: bool = True,
    centre_offset: float = 0.5,
) -> tuple[F, npt.NDArray[np.int64]]:
    """``cls_scores[i]``: (H_i W_i, C) for stride i; ``bbox_preds[i]``: (H_i W_i, 4 (R+1));
    ``img_shape``: (height, width). Returns dets (K, 5: x1 y1 x2 y2 score) and labels."""
    mlvl_bboxes, mlvl_scores = [], []
    for stride, cls_score, bbox_pred in zip(strides, cls_scores, bbox_preds, strict=True):
        featmap_size = (
            int(np.ceil(img_shape[0] / stride)),
            int(np.ceil(img_shape[1] / stride)),
        )
        y, x = get_single_level_center_point(featmap_size, stride, centre_offset)
        center_points = np.stack([x, y], axis=-1)
        scores = cls_score if scores_are_sigmoid else 1.0 / (1.0 + np.exp(-cls_score))
        bbox = integral(bbox_pred, reg_max) * stride
        nms_pre = 1000
        if scores.shape[0] > nms_pre:
            max_scores = scores.max(axis=1)
            topk_inds = np.argsort(-max_scores, kind="stable")[:nms_pre]
            center_points = center_points[topk_inds, :]
            bbox = bbox[topk_inds, :]
            scores = scores[topk_inds, :]
        mlvl_bboxes.append(distance2bbox(center_points, bbox, max_shape=img_shape))
        mlvl_scores.append(scores)
    all_bboxes = np.concatenate(mlvl_bboxes)
    all_scores = np.concatenate(mlvl_scores)
    padding = np.zeros((all_scores.shape[0], 1), np.float32)
    all_scores = np.concatenate([all_scores, padding], axis=1)
    return multiclass_nms(all_bboxes, all_scores, score_thr=0.05, iou_threshold=0.6, max_num=100)


# --- pre-processing: nanodet/data/transform/warp.py + color.py, the validation pipeline ---


def get_resize_matrix(
    raw_shape: tuple[int, int], dst_shape: tuple[int, int], keep_ratio: bool
) -> npt.NDArray[np.float64]:
    r_w, r_h = raw_shape
    d_w, d_h = dst_shape
    rs = np.eye(3)
    if keep_ratio:
        c = np.eye(3)
        c[0, 2] = -r_w / 2
        c[1, 2] = -r_h / 2
        ratio = d_h / r_h if r_w / r_h < d_w / d_h else d_w / r_w
        rs[0, 0] *= ratio
        rs[1, 1] *= ratio
        t = np.eye(3)
        t[0, 2] = 0.5 * d_w
        t[1, 2] = 0.5 * d_h
        out: npt.NDArray[np.float64] = t @ rs @ c
        return out
    rs[0, 0] *= d_w / r_w
    rs[1, 1] *= d_h / r_h
    return rs


def preprocess(
    bgr: npt.NDArray[np.uint8],
    dst_shape: tuple[int, int] = (416, 416),
    mean: tuple[float, float, float] = (103.53, 116.28, 123.675),
    std: tuple[float, float, float] = (57.375, 57.12, 58.395),
) -> tuple[F, npt.NDArray[np.float64]]:
    """The validation pipeline of nanodet-m-416.yml (keep_ratio: True, no augmentation):
    ``warp_and_resize`` (its centre and translate matrices cancel to the identity, then
    ``get_resize_matrix``; ``cv2.warpPerspective``, bilinear, zero border) and
    ``_normalize`` ((img - mean) / std on the BGR image). Returns the NCHW tensor and the
    warp matrix (image → tensor pixels)."""
    import cv2

    height, width = bgr.shape[:2]
    m = get_resize_matrix((width, height), dst_shape, keep_ratio=True)
    img = cv2.warpPerspective(bgr, m, dsize=dst_shape).astype(np.float32)
    img = (img - np.array(mean, np.float32)) / np.array(std, np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None]), m
