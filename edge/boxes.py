"""Axis-aligned boxes (x1, y1, x2, y2): the one place IoU is computed.

Used by NMS (detectors), the tracker, the converter's box F1 and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]
Floats = npt.NDArray[np.floating]


def iou_matrix(a: Floats, b: Floats) -> Floats:
    """IoU of every row of ``a`` (N, 4) with every row of ``b`` (M, 4): (N, M), in the
    inputs' float type; 0 where the union is empty. NMS calls it per candidate, so it
    allocates as little as it can."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    # np.maximum(·, 0): what np.clip(·, 0, None) calls, without its Python-level wrapper
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: Floats = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes (``iou_matrix``'s formula in plain floats: the tracker calls it per
    track and frame, where numpy's per-call cost is 10× the arithmetic)."""
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(
        min(a[3], b[3]) - max(a[1], b[1]), 0.0
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
