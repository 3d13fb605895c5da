"""ByteTrack's Kalman filter as numpy batched over tracks: the reference ``edge.kalman.BoxFilter``
is checked against (it was the tracker's own filter until BoxFilter replaced it).

The state is (cx, cy, a, h, vcx, vcy, va, vh); see edge/kalman.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.kalman import W_POS, W_VEL, BoxFilter

Floats = npt.NDArray[np.float64]
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)


def to_xyah(boxes: Floats) -> Floats:
    """(N, 4) x1, y1, x2, y2 → (N, 4) cx, cy, w/h, h."""
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
    out = np.empty((len(boxes), 4))
    out[:, 0] = boxes[:, 0] + w / 2
    out[:, 1] = boxes[:, 1] + h / 2
    out[:, 2] = w / h
    out[:, 3] = h
    return out


def to_xyxy(xyah: Floats) -> Floats:
    """(N, ≥4) cx, cy, w/h, h (a state's first four) → (N, 4) x1, y1, x2, y2."""
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    out = np.empty((len(xyah), 4))
    out[:, 0] = xyah[:, 0] - w / 2
    out[:, 1] = xyah[:, 1] - h / 2
    out[:, 2] = xyah[:, 0] + w / 2
    out[:, 3] = xyah[:, 1] + h / 2
    return out


def _diag(std: Floats) -> Floats:
    """(N, k) standard deviations → (N, k, k) diagonal covariances."""
    n, k = std.shape
    out = np.zeros((n, k, k))
    out.reshape(n, k * k)[:, :: k + 1] = std**2  # the diagonal, as a strided view
    return out


def _stds(h: Floats, pos: float, vel: float, aspect: float, aspect_vel: float) -> Floats:
    """(N, 8) standard deviations: ``pos·h`` for cx, cy, h, ``vel·h`` for their velocities,
    the constants ``aspect`` and ``aspect_vel`` for the aspect ratio and its velocity.
    Columns filled in place: the tracker runs this per frame, where ``np.stack``'s
    Python-level cost is larger than the arithmetic."""
    std = np.empty((len(h), 8))
    std[:, 0] = std[:, 1] = std[:, 3] = pos * h
    std[:, 4] = std[:, 5] = std[:, 7] = vel * h
    std[:, 2] = aspect
    std[:, 6] = aspect_vel
    return std


def initiate(boxes: Floats) -> tuple[Floats, Floats]:
    """New states (N, 8) and covariances (N, 8, 8) from (N, 4) xyxy boxes, at rest."""
    z = to_xyah(boxes)
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    return mean, _diag(_stds(z[:, 3], 2 * W_POS, 10 * W_VEL, 1e-2, 1e-5))


def predict(mean: Floats, cov: Floats, steps: float = 1.0) -> tuple[Floats, Floats]:
    """``steps`` frames ahead (1: the next frame; 2: a frame was dropped): (N, 8),
    (N, 8, 8) → the predicted states and covariances. The process noise grows with
    ``steps`` as over that many single steps (to first order)."""
    std = _stds(mean[:, 3], W_POS, W_VEL, 1e-2, 1e-5)
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
    std = np.empty((len(m), 4))
    std[:, 0] = std[:, 1] = std[:, 3] = W_POS * m[:, 3]
    std[:, 2] = 1e-1
    r = _diag(std)
    # H·P·Hᵀ and P·Hᵀ, H = [I₄ 0]: P's first four rows and columns (the same values as
    # the products with H, without two batched matrix products per frame)
    s = p[:, :4, :4] + r  # (k, 4, 4)
    gain = np.linalg.solve(s, p[:, :, :4].transpose(0, 2, 1)).transpose(0, 2, 1)  # (k, 8, 4)
    innov = z - m[:, :4]
    new_mean, new_cov = mean.copy(), cov.copy()
    new_mean[idx] = m + np.einsum("kij,kj->ki", gain, innov)
    new_cov[idx] = p - gain @ s @ gain.transpose(0, 2, 1)
    return new_mean, new_cov


def state_of(f: BoxFilter) -> tuple[Floats, Floats]:
    """A ``BoxFilter``'s (8,) mean and (8, 8) covariance, laid out as the batched filter's."""
    mean = np.array([*f.x, *f.v])
    cov = np.zeros((8, 8))
    for i, (pxx, pxv, pvv) in enumerate(f.p):
        cov[i, i], cov[i, i + 4], cov[i + 4, i], cov[i + 4, i + 4] = pxx, pxv, pxv, pvv
    return mean, cov
