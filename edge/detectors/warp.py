"""MediaPipe's resampling (``input.resampling = "warp"``), reproduced exactly.

MediaPipe's ImageToTensorCalculator (OpenCV converter) takes a region of interest
(here the whole image; with ``keep_aspect_ratio`` it is first grown about the image
centre to the tensor's aspect ratio, so the padding is fractional), maps its four
corners onto the tensor's corners with ``cv::getPerspectiveTransform`` and samples it
with ``cv::warpPerspective(INTER_LINEAR, BORDER_CONSTANT 0 | BORDER_REPLICATE)``. A
tensor pixel ``(x, y)`` therefore reads the source at ``roi_left + x * roi_w / tw``: no
half-pixel shift, unlike ``cv2.resize``.

OpenCV's warpPerspective rounds each source coordinate to 1/32 pixel and interpolates
8-bit pixels with fixed-point weights. The same maps are computed here once per input
size, exactly as warpPerspective computes them (double precision, round to nearest),
and stored in OpenCV's fixed-point form (``CV_16SC2`` + ``CV_16UC1``), so each frame
is one ``cv2.remap``, whose fixed-point bilinear path is the one MediaPipe's build runs.
Calling ``cv2.warpPerspective`` instead is not the same: OpenCV 5.1's differs from it by
up to 6 grey levels on random images here. Measured with
mediapipe 0.10.21 and opencv-python-headless 5.1: BlazeFace scores equal to 2e-7, boxes
to 6e-5 px (tests/integration/test_blazeface_mediapipe.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.models.manifest import ImageInput

INTER_BITS = 5  # OpenCV's INTER_BITS: source coordinates in 1/32 pixel
INTER_TAB_SIZE = 1 << INTER_BITS


@dataclass(frozen=True, slots=True)
class Roi:
    """The source rectangle mapped onto the tensor, in image pixels (float32 as in MediaPipe)."""

    center_x: float
    center_y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return float(np.float32(self.center_x) - np.float32(self.width) / np.float32(2))

    @property
    def top(self) -> float:
        return float(np.float32(self.center_y) - np.float32(self.height) / np.float32(2))


def mediapipe_roi(image_w: int, image_h: int, tensor_w: int, tensor_h: int, keep: bool) -> Roi:
    """The whole-image ROI, grown to the tensor's aspect when ``keep`` (MediaPipe's PadRoi)."""
    f = np.float32
    w, h = f(image_w), f(image_h)
    cx, cy = w / f(2), h / f(2)
    if keep:
        tensor_ratio = f(tensor_h) / f(tensor_w)
        if tensor_ratio > h / w:
            w, h = w, w * tensor_ratio
        else:
            w, h = h / tensor_ratio, h
    return Roi(float(cx), float(cy), float(w), float(h))


def inverse_matrix(roi: Roi, tensor_w: int, tensor_h: int) -> npt.NDArray[np.float64]:
    """Tensor pixel → source pixel, as warpPerspective gets it (boxPoints, LU, invert)."""
    src = cv2.boxPoints(((roi.center_x, roi.center_y), (roi.width, roi.height), 0.0))
    tw, th = float(tensor_w), float(tensor_h)
    dst = np.array([[0.0, th], [0.0, 0.0], [tw, 0.0], [tw, th]], np.float32)
    forward = cv2.getPerspectiveTransform(np.asarray(src, np.float32), dst)
    _, inverse = cv2.invert(forward, flags=cv2.DECOMP_LU)
    return np.asarray(inverse, np.float64)


def fixed_point_maps(
    inverse: npt.NDArray[np.float64], tensor_w: int, tensor_h: int
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.uint16]]:
    """warpPerspective's per-pixel maps: integer source pixel and 1/32 fraction index."""
    m = inverse.reshape(-1)
    x = np.arange(tensor_w, dtype=np.float64)[np.newaxis, :]
    y = np.arange(tensor_h, dtype=np.float64)[:, np.newaxis]
    w = m[6] * x + m[7] * y + m[8]
    scale = np.divide(INTER_TAB_SIZE, w, out=np.zeros_like(w), where=w != 0)
    limit = float(np.iinfo(np.int32).max)
    fx = np.clip((m[0] * x + m[1] * y + m[2]) * scale, -limit - 1, limit)
    fy = np.clip((m[3] * x + m[4] * y + m[5]) * scale, -limit - 1, limit)
    ix = np.rint(fx).astype(np.int64)  # cvRound: nearest, ties to even
    iy = np.rint(fy).astype(np.int64)
    shorts = np.iinfo(np.int16)
    xy = np.empty((tensor_h, tensor_w, 2), np.int16)
    xy[..., 0] = np.clip(ix >> INTER_BITS, shorts.min, shorts.max)
    xy[..., 1] = np.clip(iy >> INTER_BITS, shorts.min, shorts.max)
    mask = INTER_TAB_SIZE - 1
    frac = ((iy & mask) * INTER_TAB_SIZE + (ix & mask)).astype(np.uint16)
    return xy, frac


@dataclass(frozen=True, slots=True)
class WarpPlan:
    """Everything one input size needs: the maps and where the ROI lies."""

    roi: Roi
    xy: npt.NDArray[np.int16]
    frac: npt.NDArray[np.uint16]


class WarpResampler:
    """Per-frame MediaPipe resampling into a caller-owned uint8 canvas."""

    def __init__(self, spec: ImageInput) -> None:
        self._keep = spec.resize == "letterbox"
        self._border = cv2.BORDER_REPLICATE if spec.border == "replicate" else cv2.BORDER_CONSTANT
        self._plans: dict[tuple[int, int, int, int], WarpPlan] = {}

    def plan(self, image_w: int, image_h: int, tensor_w: int, tensor_h: int) -> WarpPlan:
        key = (image_w, image_h, tensor_w, tensor_h)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) >= 8:  # a source that keeps changing size: do not grow
                self._plans.clear()
            roi = mediapipe_roi(image_w, image_h, tensor_w, tensor_h, self._keep)
            xy, frac = fixed_point_maps(inverse_matrix(roi, tensor_w, tensor_h), tensor_w, tensor_h)
            found = self._plans[key] = WarpPlan(roi, xy, frac)
        return found

    def __call__(self, image: npt.NDArray[np.uint8], canvas: npt.NDArray[np.uint8]) -> Roi:
        """Resample ``image`` into ``canvas`` (tensor_h × tensor_w × 3); the ROI used."""
        ih, iw = image.shape[:2]
        th, tw = canvas.shape[:2]
        plan = self.plan(iw, ih, tw, th)
        cv2.remap(
            image,
            plan.xy,
            plan.frac,
            cv2.INTER_LINEAR,
            dst=canvas,
            borderMode=self._border,
            borderValue=(0, 0, 0, 0),
        )
        return plan.roi
