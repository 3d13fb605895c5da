"""A constant-velocity Kalman filter for boxes (ByteTrack's, from SORT), one per track.

The state is (cx, cy, a, h, vcx, vcy, va, vh): box centre, aspect ratio w/h, height and
their velocities per frame, as ByteTrack has them. ``predict`` takes the number of frame
intervals since the last one (the tracker measures it from capture times, so a dropped
frame is predicted two intervals ahead). The noise is proportional to the box height
(ByteTrack's weights 1/20 for position, 1/160 for velocity), so it is the same in pixels
or normalized units.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

W_POS, W_VEL = 1.0 / 20, 1.0 / 160


class BoxFilter:
    """One track's filter in plain floats: ByteTrack's batched numpy filter, per track.

    With F = [[I, s·I], [0, I]] and diagonal noises, the covariance never couples two
    coordinates: ByteTrack's 8-state filter is four independent (value, velocity) filters,
    for cx, cy, a and h. Each keeps its 2×2 covariance as (p_xx, p_xv, p_vv). The tracker
    runs this for each track and frame, where about 40 small numpy calls cost more than the
    arithmetic (and hold the GIL the inference thread wants): one update with one face took 0.21 ms
    batched and takes 0.03 ms here (bench/bench_tracker.py). tests/unit/test_tracking_bytetrack.py
    checks it against the batched filter (tests/support/kalman_ref.py) to 1e-12."""

    __slots__ = ("p", "v", "x")

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, max(y2 - y1, 1e-9)
        self.x = [x1 + w / 2, y1 + h / 2, w / h, h]
        self.v = [0.0, 0.0, 0.0, 0.0]
        pos, vel = 2 * W_POS * h, 10 * W_VEL * h
        self.p = [
            [pos * pos, 0.0, vel * vel],
            [pos * pos, 0.0, vel * vel],
            [1e-4, 0.0, 1e-10],  # (1e-2)², (1e-5)²
            [pos * pos, 0.0, vel * vel],
        ]

    def predict(self, steps: float = 1.0, hold_height: bool = False) -> None:
        """``steps`` frame intervals ahead; ``hold_height``: a lost track's height stops
        changing (its height velocity is zeroed first, as ByteTrack does)."""
        if hold_height:
            self.v[3] = 0.0
        h = self.x[3]
        qx, qv = (W_POS * h) ** 2 * steps, (W_VEL * h) ** 2 * steps
        x, v, s = self.x, self.v, steps
        for i, p in enumerate(self.p):
            pxx, pxv, pvv = p
            x[i] += s * v[i]
            if i == 2:
                p[0] = pxx + 2 * s * pxv + s * s * pvv + 1e-4 * steps
                p[1] = pxv + s * pvv
                p[2] = pvv + 1e-10 * steps
            else:
                p[0] = pxx + 2 * s * pxv + s * s * pvv + qx
                p[1] = pxv + s * pvv
                p[2] = pvv + qv

    def update(self, box: tuple[float, float, float, float]) -> None:
        """Correct with a measured xyxy box."""
        x1, y1, x2, y2 = box
        w, h = x2 - x1, max(y2 - y1, 1e-9)
        z = (x1 + w / 2, y1 + h / 2, w / h, h)
        r = (W_POS * self.x[3]) ** 2
        x, v = self.x, self.v
        for i, p in enumerate(self.p):
            pxx, pxv, pvv = p
            s = pxx + (1e-2 if i == 2 else r)  # 1e-2: (1e-1)², the aspect's noise
            kx, kv = pxx / s, pxv / s
            innov = z[i] - x[i]
            x[i] += kx * innov
            v[i] += kv * innov
            p[0] = pxx - kx * pxx
            p[1] = pxv - kx * pxv
            p[2] = pvv - kv * pxv

    def box(self) -> tuple[float, float, float, float]:
        """The state's box, xyxy (unclipped)."""
        cx, cy, a, h = self.x
        w = a * h
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def state(self) -> tuple[Floats, Floats]:
        """(8,) mean and (8, 8) covariance, laid out as ByteTrack's filter has them."""
        mean = np.array([*self.x, *self.v])
        cov = np.zeros((8, 8))
        for i, (pxx, pxv, pvv) in enumerate(self.p):
            cov[i, i], cov[i, i + 4], cov[i + 4, i], cov[i + 4, i + 4] = pxx, pxv, pxv, pvv
        return mean, cov
