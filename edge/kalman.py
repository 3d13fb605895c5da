"""A constant-velocity Kalman filter for boxes (ByteTrack's, from SORT), one per track.

The state is (cx, cy, a, h, vcx, vcy, va, vh): box centre, aspect ratio w/h, height and
their velocities per frame, as ByteTrack has them. ``predict`` takes the number of frame
intervals since the last one (the tracker measures it from capture times, so a dropped
frame is predicted two intervals ahead). The noise is proportional to the box height
(ByteTrack's weights 1/20 for position, 1/160 for velocity), so it is the same in pixels
or normalized units.
"""

from __future__ import annotations

from edge.boxes import Box

W_POS, W_VEL = 1.0 / 20, 1.0 / 160
# the aspect ratio's noise, constant (ByteTrack's): process (value, velocity) and measurement
ASPECT_Q, ASPECT_R = (1e-2**2, 1e-5**2), 1e-1**2


def _xyah(box: Box) -> tuple[float, float, float, float]:
    """x1, y1, x2, y2 → cx, cy, w/h, h (h at least 1e-9)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, max(y2 - y1, 1e-9)
    return x1 + w / 2, y1 + h / 2, w / h, h


class BoxFilter:
    """One track's filter in plain floats: ByteTrack's batched numpy filter, per track.

    With F = [[I, s·I], [0, I]] and diagonal noises, the covariance never couples two
    coordinates: ByteTrack's 8-state filter is four independent (value, velocity) filters,
    for cx, cy, a and h. Each keeps its 2×2 covariance as [p_xx, p_xv, p_vv]. The tracker
    runs this for each track and frame, where about 40 small numpy calls cost more than
    the arithmetic (and hold the GIL the inference thread wants): one update with one face
    took 0.21 ms batched and takes 0.03 ms here (bench/bench_tracker.py).
    tests/unit/test_tracking_bytetrack.py checks it against the batched filter
    (tests/support/kalman_ref.py) to 1e-12."""

    __slots__ = ("p", "v", "x")

    def __init__(self, box: Box) -> None:
        self.x = list(_xyah(box))
        self.v = [0.0, 0.0, 0.0, 0.0]
        h = self.x[3]
        pos, vel = (2 * W_POS * h) ** 2, (10 * W_VEL * h) ** 2
        self.p = [
            [pos, 0.0, vel],
            [pos, 0.0, vel],
            [ASPECT_Q[0], 0.0, ASPECT_Q[1]],
            [pos, 0.0, vel],
        ]

    def predict(self, steps: float = 1.0, hold_height: bool = False) -> None:
        """``steps`` frame intervals ahead; ``hold_height``: a lost track's height stops
        changing (its height velocity is zeroed first, as ByteTrack does). The process
        noise grows with ``steps`` as over that many single steps (to first order)."""
        if hold_height:
            self.v[3] = 0.0
        h, s = self.x[3], steps
        q = ((W_POS * h) ** 2, (W_VEL * h) ** 2)
        for i, p in enumerate(self.p):
            qx, qv = ASPECT_Q if i == 2 else q
            pxx, pxv, pvv = p
            self.x[i] += s * self.v[i]
            p[0] = pxx + 2 * s * pxv + s * s * pvv + qx * s
            p[1] = pxv + s * pvv
            p[2] = pvv + qv * s

    def update(self, box: Box) -> None:
        """Correct with a measured xyxy box."""
        z = _xyah(box)
        r = (W_POS * self.x[3]) ** 2
        for i, p in enumerate(self.p):
            pxx, pxv, pvv = p
            s = pxx + (ASPECT_R if i == 2 else r)
            kx, kv = pxx / s, pxv / s
            innov = z[i] - self.x[i]
            self.x[i] += kx * innov
            self.v[i] += kv * innov
            p[0] = pxx - kx * pxx
            p[1] = pxv - kx * pxv
            p[2] = pvv - kv * pxv

    def box(self) -> Box:
        """The state's box, xyxy (unclipped)."""
        cx, cy, a, h = self.x
        w = a * h
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
