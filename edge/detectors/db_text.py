"""DB (differentiable binarization) text detection: the PP-OCR det family.

The model outputs a text-probability map. Decoding follows PaddleOCR/RapidOCR's
``DBPostProcess``: threshold → (dilate) → contours → min-area rectangle → mean
probability inside it (the box score) → expand ("unclip") by
``area * unclip_ratio / perimeter`` → min-area rectangle again → input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import pyclipper
from pydantic import BaseModel, ConfigDict, Field

from edge.detectors.base import Detection, Image, StageTimes
from edge.detectors.labels import check_label_count
from edge.detectors.preprocess import ImagePreprocessor, Transform
from edge.errors import InputError, ManifestError, ModelError
from edge.models.manifest import ImageInput, Manifest
from edge.runtime.base import AcceleratorInfo, Backend

FloatArray = npt.NDArray[np.float32]
Points = npt.NDArray[np.float32] | npt.NDArray[np.int32]


class Params(BaseModel):
    """The ``decoder`` table of a ``db_text`` manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresh: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        title="Pixel threshold",
        description="probability above which a pixel is text",
    )
    box_thresh: float = Field(
        default=0.5,
        ge=0,
        le=1,
        title="Box threshold",
        description="mean probability inside a box to keep it",
    )
    max_candidates: int = Field(
        default=1000,
        gt=0,
        title="Max candidates",
        description="contours examined per image, at most",
    )
    unclip_ratio: float = Field(
        default=1.6,
        gt=0,
        title="Unclip ratio",
        description="how far a box is expanded, × area / perimeter",
    )
    use_dilation: bool = Field(
        default=True, title="Dilate", description="dilate the binary mask with a 2×2 kernel first"
    )
    score_mode: Literal["fast", "slow"] = Field(
        default="fast",
        title="Score mode",
        description="box score over the min-area rectangle (fast) or the contour polygon (slow)",
    )
    min_size: float = Field(
        default=3.0,
        gt=0,
        title="Min size",
        description="boxes whose short side is smaller (map px) are dropped",
    )


@dataclass(frozen=True, slots=True)
class TextBox:
    """A text quadrilateral in probability-map pixels: tl, tr, br, bl."""

    quad: FloatArray
    score: float


def _mini_box(points: Points) -> tuple[FloatArray, float]:
    """Min-area rectangle as tl, tr, br, bl and its short side."""
    rect = cv2.minAreaRect(points)
    pts = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left = sorted(pts[:2], key=lambda p: p[1])
    right = sorted(pts[2:], key=lambda p: p[1])
    quad = np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)
    return quad, float(min(rect[1]))


def _mean_inside(prob: FloatArray, poly: Points) -> float:
    """Mean of ``prob`` over the filled polygon ``poly`` (N×2, map pixels)."""
    h, w = prob.shape
    xs, ys = poly[:, 0], poly[:, 1]
    x0 = int(np.clip(np.floor(xs.min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(xs.max()), 0, w - 1))
    y0 = int(np.clip(np.floor(ys.min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(ys.max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (poly - np.array([x0, y0], dtype=poly.dtype)).astype(np.int32)
    cv2.fillPoly(mask, [shifted.reshape(-1, 1, 2)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _unclip(quad: FloatArray, ratio: float) -> npt.NDArray[np.int32] | None:
    """Expand ``quad`` by ``area * ratio / perimeter`` with round joins; None if it vanishes."""
    area = abs(cv2.contourArea(quad))
    length = cv2.arcLength(quad.reshape(-1, 1, 2), closed=True)
    if length <= 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(quad.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(area * ratio / length)
    if not paths:
        return None
    return np.concatenate([np.asarray(p, dtype=np.int32) for p in paths]).reshape(-1, 2)


def decode(prob: FloatArray, params: Params, box_thresh: float | None = None) -> list[TextBox]:
    """Text boxes in one H×W probability map, in map pixels."""
    if prob.ndim != 2:
        raise InputError(f"db_text: probability map must be H×W, got shape {prob.shape}")
    threshold = params.box_thresh if box_thresh is None else box_thresh
    binary = (prob > params.thresh).astype(np.uint8)
    mask = cv2.dilate(binary, np.ones((2, 2), dtype=np.uint8)) if params.use_dilation else binary
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[TextBox] = []
    for found in contours[: params.max_candidates]:
        contour = np.asarray(found, dtype=np.int32).reshape(-1, 2)
        quad, short = _mini_box(contour)
        if short < params.min_size:
            continue
        poly = quad if params.score_mode == "fast" else contour
        score = _mean_inside(prob, poly)
        if score < threshold:
            continue
        expanded = _unclip(quad, params.unclip_ratio)
        if expanded is None:
            continue
        quad, short = _mini_box(expanded)
        if short < params.min_size + 2:
            continue
        out.append(TextBox(quad, score))
    return out


def to_detection(box: TextBox, transform: Transform, label: str) -> Detection:
    """Map a map-pixel box to input-image pixels, clipped to the image."""
    x, y = transform.to_image(box.quad[:, 0], box.quad[:, 1])
    x = np.clip(x, 0, transform.image_w)
    y = np.clip(y, 0, transform.image_h)
    polygon = [(float(a), float(b)) for a, b in zip(x, y, strict=True)]
    return Detection(
        label=label,
        score=box.score,
        box=(float(x.min()), float(y.min()), float(x.max()), float(y.max())),
        polygon=polygon,
    )


class DBTextDetector:
    """A DB text detector; ``score_threshold`` (the box threshold) may be changed between calls."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        if not isinstance(manifest.input, ImageInput):
            raise ManifestError(f"{manifest.name}: input.kind: db_text needs an image input")
        if len(backend.inputs) != 1 or not backend.outputs:
            raise ModelError(
                f"{manifest.name}: db_text expects one image input and a probability-map output, "
                f"the model has {len(backend.inputs)} inputs and {len(backend.outputs)} outputs"
            )
        check_label_count(manifest, 1, manifest.name)  # one probability map: one class
        self.manifest = manifest
        self.times = StageTimes()
        self.params = params
        self.score_threshold = params.box_thresh
        self.label = manifest.labels[0] if manifest.labels else "text"
        self._backend = backend
        self._input = backend.inputs[0].name
        self._pre = ImagePreprocessor(manifest.input, backend.inputs[0])

    def detect(self, image: Image) -> list[Detection]:
        with self.times.stage("pre"):
            tensor, transform = self._pre(image)
        with self.times.stage("invoke"):
            out = self._backend.run({self._input: tensor})[0]
        with self.times.stage("post"):
            if out.ndim != 4 or out.shape[:2] != (1, 1):
                raise ModelError(
                    f"{self.manifest.name}: db_text expects a 1×1×H×W probability map, "
                    f"the model returned shape {out.shape}"
                )
            prob = np.asarray(out[0, 0], dtype=np.float32)
            if prob.shape != (transform.model_h, transform.model_w):
                # the map may be smaller than the input (a strided head): rescale to map pixels
                sx, sy = prob.shape[1] / transform.model_w, prob.shape[0] / transform.model_h
                transform = Transform(
                    transform.scale_x * sx, transform.scale_y * sy, transform.pad_x * sx,
                    transform.pad_y * sy, prob.shape[1], prob.shape[0],
                    transform.image_w, transform.image_h,
                )  # fmt: skip
            boxes = decode(prob, self.params, self.score_threshold)
            dets = [to_detection(b, transform, self.label) for b in boxes]
            dets.sort(key=lambda d: (d.box[1], d.box[0]))  # reading order: top down, then left
        return dets

    @property
    def accelerator(self) -> AcceleratorInfo:
        """The provider or delegate the model really runs on."""
        return self._backend.accelerator

    def close(self) -> None:
        self._backend.close()


def build(manifest: Manifest, backend: Backend, params: Params) -> DBTextDetector:
    return DBTextDetector(manifest, backend, params)
