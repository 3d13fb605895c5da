"""A constant-velocity Kalman filter for boxes, batched over tracks (ByteTrack's, from SORT).

The state is (cx, cy, a, h, vcx, vcy, va, vh): box centre, aspect ratio w/h, height and
their velocities per frame, as ByteTrack has them. ``predict`` takes the number of frame
intervals since the last one (the tracker measures it from capture times, so a dropped
frame is predicted two intervals ahead). The noise is proportional to the box height
(ByteTrack's weights 1/20 for position, 1/160 for velocity), so it is the same in pixels
or normalized units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

W_POS, W_VEL = 1.0 / 20, 1.0 / 160
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def to_xyah(boxes: Floats) -> Floats:
    """(N, 4) x1, y1, x2, y2 → (N, 4) cx, cy, w/h, h."""
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1)


def to_xyxy(xyah: Floats) -> Floats:
    """(N, ≥4) cx, cy, w/h, h (a state's first four) → (N, 4) x1, y1, x2, y2."""
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack(
        [xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1
    )


def _diag(std: Floats) -> Floats:
    """(N, k) standard deviations → (N, k, k) diagonal covariances."""
    out = np.zeros((*std.shape, std.shape[1]))
    idx = np.arange(std.shape[1])
    out[:, idx, idx] = std**2
    return out


def initiate(boxes: Floats) -> tuple[Floats, Floats]:
    """New states (N, 8) and covariances (N, 8, 8) from (N, 4) xyxy boxes, at rest."""
    z = to_xyah(boxes)
    h = z[:, 3]
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    one = np.ones_like(h)
    pos, vel = 2 * W_POS * h, 10 * W_VEL * h
    std = np.stack([pos, pos, 1e-2 * one, pos, vel, vel, 1e-5 * one, vel], axis=1)
    return mean, _diag(std)


def predict(mean: Floats, cov: Floats, steps: float = 1.0) -> tuple[Floats, Floats]:
    """``steps`` frames ahead (1: the next frame; 2: a frame was dropped): (N, 8),
    (N, 8, 8) → the predicted states and covariances. The process noise grows with
    ``steps`` as over that many single steps (to first order)."""
    h = mean[:, 3]
    one = np.ones_like(h)
    pos, vel = W_POS * h, W_VEL * h
    std = np.stack([pos, pos, 1e-2 * one, pos, vel, vel, 1e-5 * one, vel], axis=1)
    f = _F if steps == 1.0 else _transition(steps)
    return mean @ f.T, f @ cov @ f.T + _diag(std) * steps


def _transition(steps: float) -> Floats:
    f = np.eye(8)
    f[:4, 4:] = np.eye(4) * steps
    return f


def update(
    mean: Floats, cov: Floats, boxes: Floats, rows: Sequence[int] | None = None
) -> tuple[Floats, Floats]:
    """Correct states ``rows`` (default: all) with measured (len(rows), 4) xyxy boxes."""
    idx = np.arange(len(mean)) if rows is None else np.asarray(rows, np.int64)
    m, p = mean[idx], cov[idx]
    z = to_xyah(boxes)
    h = m[:, 3]
    one = np.ones_like(h)
    r = _diag(np.stack([W_POS * h, W_POS * h, 1e-1 * one, W_POS * h], axis=1))
    s = _H @ p @ _H.T + r  # (k, 4, 4)
    gain = np.linalg.solve(s, (p @ _H.T).transpose(0, 2, 1)).transpose(0, 2, 1)  # (k, 8, 4)
    innov = z - m[:, :4]
    new_mean, new_cov = mean.copy(), cov.copy()
    new_mean[idx] = m + np.einsum("kij,kj->ki", gain, innov)
    new_cov[idx] = p - gain @ s @ gain.transpose(0, 2, 1)
    return new_mean, new_cov
