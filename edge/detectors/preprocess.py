"""Image → input tensor, driven by the manifest: resize (stretch / letterbox /
limit-side), colour order, layout, scale/mean/std, quantized inputs.

Buffers are allocated once per input shape and reused: this runs per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.detectors.warp import WarpResampler
from edge.errors import InputError
from edge.models.manifest import ImageInput
from edge.runtime.base import TensorSpec


@dataclass(frozen=True, slots=True)
class Transform:
    """Maps model-input pixel coordinates back to source-image pixels."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    model_w: int
    model_h: int
    image_w: int
    image_h: int

    def to_image(
        self, x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        return (x - self.pad_x) / self.scale_x, (y - self.pad_y) / self.scale_y


class ImagePreprocessor:
    def __init__(self, spec: ImageInput, tensor: TensorSpec) -> None:
        self.spec = spec
        self.tensor = tensor
        if len(tensor.shape) != 4:
            raise InputError(
                f"input tensor {tensor.name!r} has shape {tensor.shape}; image models need 4 dims"
            )
        if spec.layout == "NHWC":
            h, w = tensor.shape[1], tensor.shape[2]
        else:
            h, w = tensor.shape[2], tensor.shape[3]
        self.fixed_w = spec.width or (w if w > 0 else None)
        self.fixed_h = spec.height or (h if h > 0 else None)
        if spec.resize != "limit_side" and (self.fixed_w is None or self.fixed_h is None):
            raise InputError(
                f"input {tensor.name!r} has a dynamic size: set input.width/height in the "
                "manifest or use resize = 'limit_side'"
            )
        std = np.asarray(spec.std, dtype=np.float32)
        mean = np.asarray(spec.mean, dtype=np.float32)
        self._mul = (1.0 / std).astype(np.float32)
        self._add = (-mean / std).astype(np.float32)
        self._out_dtype = tensor.dtype
        q = tensor.quantization
        if np.issubdtype(self._out_dtype, np.integer):
            if q is None:
                raise InputError(
                    f"input {tensor.name!r} is {self._out_dtype} but has no quantization parameters"
                )
            # real = scale * (q - zp)  =>  q = real / scale + zp
            self._mul = self._mul / q.scale
            self._add = self._add / q.scale + q.zero_point
            info = np.iinfo(str(self._out_dtype))
            self._clip: tuple[int, int] | None = (int(info.min), int(info.max))
        else:
            self._clip = None
        self._canvas: npt.NDArray[np.uint8] | None = None
        self._placed = (0, 0, 0, 0)
        # OpenCV scalars (per channel) for the affine below: one pass each, no temporaries
        self._mul4 = (*(float(v) for v in self._mul), 0.0)
        self._add4 = (*(float(v) for v in self._add), 0.0)
        self._float: npt.NDArray[np.float32] | None = None
        self._warp = WarpResampler(spec) if spec.resampling == "warp" else None
        # float NCHW: the affine goes plane by plane straight into the tensor, with no
        # float HWC intermediate and no transposing copy (half the time and the memory
        # traffic; bit-identical: the same float32 multiply, then add, per element)
        self._planar = (
            spec.layout == "NCHW" and self._clip is None and self._out_dtype == np.float32
        )
        self._planes: list[npt.NDArray[np.uint8]] = []

    def _planar_affine(self, canvas: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(1, 3, H, W) float32 = canvas channel × mul + add, one plane at a time."""
        h, w = canvas.shape[:2]
        if not self._planes or self._planes[0].shape != (h, w):
            self._planes = [np.empty((h, w), np.uint8) for _ in range(3)]
        cv2.split(canvas, self._planes)
        out = np.empty((1, 3, h, w), np.float32)  # fresh: callers may keep the tensor
        for c, plane in enumerate(self._planes):
            cv2.multiply(plane, float(self._mul[c]), dst=out[0, c], dtype=cv2.CV_32F)
            cv2.add(out[0, c], float(self._add[c]), dst=out[0, c])
        return out

    def target_size(self, image_w: int, image_h: int) -> tuple[int, int]:
        if self.spec.resize != "limit_side":
            assert self.fixed_w is not None and self.fixed_h is not None
            return self.fixed_w, self.fixed_h
        side = self.spec.limit_side_len
        short, long_ = min(image_w, image_h), max(image_w, image_h)
        if self.spec.limit_type == "min":
            ratio = side / short if short < side else 1.0
        else:
            ratio = side / long_ if long_ > side else 1.0
        m = self.spec.multiple_of
        w = max(m, round(image_w * ratio / m) * m)
        h = max(m, round(image_h * ratio / m) * m)
        return w, h

    def _resize_into(self, image: npt.NDArray[np.uint8], view: npt.NDArray[np.uint8]) -> None:
        """Resize ``image`` into ``view`` (a slice of the canvas).

        ``area`` (anti-aliased) downscaling halves with INTER_AREA while at least 2× too
        big (OpenCV's exact-2× path is fast: 0.07 ms for 640×480 here, where one general
        INTER_AREA step to 128×96 costs 0.28 ms), then bilinear for the last < 2×, which
        adds no visible aliasing. ``linear`` is plain bilinear (MediaPipe's own sampling
        is ``resampling = "warp"``, edge.detectors.warp).
        """
        nh, nw = view.shape[:2]
        src = image
        if self.spec.interpolation != "linear":  # None: area
            while src.shape[1] >= 2 * nw and src.shape[0] >= 2 * nh:
                half = (src.shape[1] // 2, src.shape[0] // 2)
                src = np.asarray(cv2.resize(src, half, interpolation=cv2.INTER_AREA), np.uint8)
        resized = cv2.resize(src, (nw, nh), dst=view, interpolation=cv2.INTER_LINEAR)
        if resized is not view and not np.shares_memory(resized, view):
            view[:] = resized

    def __call__(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.generic], Transform]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(
                f"expected a BGR uint8 image H×W×3, got {image.dtype} with shape {image.shape}"
            )
        ih, iw = image.shape[:2]
        tw, th = self.target_size(iw, ih)
        if self._canvas is None or self._canvas.shape[:2] != (th, tw):
            self._canvas = np.zeros((th, tw, 3), dtype=np.uint8)
            self._float = np.empty((th, tw, 3), dtype=np.float32)
            self._placed = (0, 0, 0, 0)
        canvas = self._canvas
        if self._warp is not None:
            roi = self._warp(image, canvas)
            sx, sy = tw / roi.width, th / roi.height
            transform = Transform(sx, sy, -roi.left * sx, -roi.top * sy, tw, th, iw, ih)
        elif self.spec.resize == "letterbox":
            # Ultralytics' LetterBox: round(w·r), centred with floor(d/2) before; the padding
            # keeps its value while the geometry holds
            s = min(tw / iw, th / ih) if self.spec.scale_up else min(tw / iw, th / ih, 1.0)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            px, py = ((tw - nw) // 2, (th - nh) // 2) if self.spec.align == "center" else (0, 0)
            if self._placed != (nw, nh, px, py):
                canvas[:] = self.spec.pad_value
                self._placed = (nw, nh, px, py)
            view = canvas[py : py + nh, px : px + nw]
            self._resize_into(image, view)
            transform = Transform(nw / iw, nh / ih, px, py, tw, th, iw, ih)  # the rounded sides
        else:
            cv2.resize(image, (tw, th), dst=canvas, interpolation=cv2.INTER_LINEAR)
            transform = Transform(tw / iw, th / ih, 0.0, 0.0, tw, th, iw, ih)
        if self.spec.color == "RGB":
            cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB, dst=canvas)
        if self._planar:
            return self._planar_affine(canvas), transform
        buf = self._float
        assert buf is not None
        # Scalar tuples: OpenCV applies them per channel. Some cv2 stub releases omit them,
        # others accept them; the Any view type-checks against both.
        cv: Any = cv2
        cv.multiply(canvas, self._mul4, dst=buf, dtype=cv2.CV_32F)
        cv.add(buf, self._add4, dst=buf)
        if self._clip is not None:
            np.rint(buf, out=buf)
            np.clip(buf, self._clip[0], self._clip[1], out=buf)
            out: npt.NDArray[np.generic] = buf.astype(self._out_dtype)
        else:
            out = buf if self._out_dtype == np.float32 else buf.astype(self._out_dtype)
        if self.spec.layout == "NCHW":
            out = np.ascontiguousarray(out.transpose(2, 0, 1))
        return out[np.newaxis], transform
