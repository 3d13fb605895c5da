"""YOLO-family decoding: Ultralytics YOLOv8 / YOLO11, YOLOv5 / v7 and YOLOX raw grids.

One output tensor, laid out as the manifest's ``decoder.layout`` says (or found from
its shape and the label count):

- ``yolov8``: ``[1, 4+nc, N]``, anchor-free cx, cy, w, h in input pixels, then one
  score per class (Ultralytics' ONNX / TFLite export);
- ``yolov8_transposed``: ``[1, N, 4+nc]``, the same rows;
- ``yolov5``: ``[1, N, 5+nc]``, cx, cy, w, h, objectness, class scores; a box scores
  objectness × class score (YOLOv5 / v7 exports);
- ``yolox``: ``[1, N, 5+nc]`` raw grid outputs (YOLOX ``decode_in_inference=False``):
  centres ``(xy + grid) × stride``, sizes ``exp(wh) × stride``, N = Σ (H/s)(W/s).

Post-processing follows Ultralytics' ``non_max_suppression``: the best class per box,
kept when its score is above ``thresholds.score`` (strictly), the best
``max_candidates`` go to hard NMS per class (or across classes), at most
``max_detections`` stay; boxes are un-letterboxed and clipped to the image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from edge.detectors.base import Detection, Image
from edge.detectors.image_model import ImageModel
from edge.detectors.nms import batched_nms
from edge.detectors.outputs import as_float, output_index, shape_text, to_detections
from edge.detectors.preprocess import Transform
from edge.errors import ManifestError, ModelError
from edge.models.manifest import Manifest
from edge.runtime.base import Backend

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]
Layout = Literal["yolov8", "yolov8_transposed", "yolov5", "yolox"]
_EXTRA = {"yolov8": 4, "yolov8_transposed": 4, "yolov5": 5, "yolox": 5}


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NmsParams(_Options):
    """Hard NMS as Ultralytics runs it (defaults are its ``predict`` defaults)."""

    iou_threshold: float = Field(default=0.7, ge=0, le=1, description="overlap that suppresses")
    class_agnostic: bool = Field(
        default=False, description="suppress across classes (Ultralytics agnostic_nms)"
    )
    max_detections: int = Field(default=300, gt=0, description="detections kept per image")
    max_candidates: int = Field(
        default=30000, gt=0, description="best-scoring boxes that enter NMS (Ultralytics max_nms)"
    )


class Params(_Options):
    """The ``decoder`` table of a ``yolo`` manifest."""

    layout: Layout | Literal["auto"] = Field(
        default="auto",
        description="output layout (module docstring); auto: yolov8, yolov8_transposed or "
        "yolov5 from the output shape and the class count (yolox must be named)",
    )
    output: int | str = Field(default=0, description="index or name of the prediction output")
    num_classes: int | None = Field(
        default=None, gt=0, description="classes the model scores; default: len(labels)"
    )
    strides: list[int] = Field(
        default=[8, 16, 32], min_length=1, description="yolox: the strides of the grid outputs"
    )
    normalized: bool = Field(
        default=False, description="boxes are in 0..1 of the input instead of input pixels"
    )
    nms: NmsParams = Field(default_factory=NmsParams, description="non-maximum suppression")


def _grid(width: int, height: int, strides: list[int]) -> tuple[Floats, Floats]:
    """YOLOX's grid: per cell (col, row) and its stride, stride by stride, row-major."""
    cells: list[Floats] = []
    steps: list[Floats] = []
    for s in strides:
        hs, ws = height // s, width // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        cells.append(np.stack((xv, yv), 2).reshape(-1, 2).astype(np.float32))
        steps.append(np.full((hs * ws, 1), s, np.float32))
    return np.concatenate(cells), np.concatenate(steps)


def resolve_layout(
    params: Params, nc: int | None, shape: tuple[int, ...], where: str
) -> tuple[Layout, int]:
    """The layout and class count for an output of ``shape``; errors say what was expected."""
    if len(shape) != 3 or shape[0] not in (1, -1):
        raise ManifestError(
            f"{where} has shape {shape_text(shape)}; the yolo decoder expects one batch of "
            "predictions, [1, 4+nc, N] or [1, N, 4+nc | 5+nc]"
        )
    a, b = shape[1], shape[2]
    src = "decoder.num_classes" if params.num_classes else "labels"
    layout = params.layout
    if layout == "auto":
        if nc is None:
            if not (0 < a < b):
                raise ManifestError(
                    f"{where} has shape {shape_text(shape)}; set labels (or decoder.num_classes "
                    "and decoder.layout) so the layout can be told from the shape"
                )
            return "yolov8", a - 4
        if a == 4 + nc and b != 4 + nc:
            return "yolov8", nc
        if b == 4 + nc:
            return "yolov8_transposed", nc
        if b == 5 + nc:
            return "yolov5", nc
        raise ManifestError(
            f"{where} has shape {shape_text(shape)}; with nc={nc} (from {src}) the yolo "
            f"decoder expects [1, {4 + nc}, N] (yolov8), [1, N, {4 + nc}] (yolov8_transposed) "
            f"or [1, N, {5 + nc}] (yolov5); fix {src} or decoder.layout"
        )
    extra = _EXTRA[layout]
    channels = a if layout == "yolov8" else b
    if nc is None:
        if channels <= extra:
            raise ManifestError(
                f"{where} has shape {shape_text(shape)}; set labels or decoder.num_classes"
            )
        return layout, channels - extra
    if channels > 0 and channels != extra + nc:
        want = f"[1, {extra + nc}, N]" if layout == "yolov8" else f"[1, N, {extra + nc}]"
        raise ManifestError(
            f"{where} has shape {shape_text(shape)}; decoder.layout {layout!r} with nc={nc} "
            f"(from {src}) expects {want}; fix {src} or decoder.layout"
        )
    return layout, nc


class YoloDecoder:
    """One prediction tensor → (boxes xyxy in model-input pixels, scores, classes)."""

    def __init__(self, params: Params, layout: Layout, nc: int) -> None:
        self.p = params
        self.layout = layout
        self.nc = nc
        self.score_threshold = 0.25
        self._grids: dict[tuple[int, int], tuple[Floats, Floats]] = {}

    def _grid_for(self, w: int, h: int) -> tuple[Floats, Floats]:
        if (w, h) not in self._grids:
            self._grids[(w, h)] = _grid(w, h, self.p.strides)
        return self._grids[(w, h)]

    def __call__(self, raw: Floats, model_w: int, model_h: int) -> tuple[Floats, Floats, Ints]:
        pred = raw[0]
        if self.layout == "yolov8":  # channels first: score over the class rows, no transpose
            cls_scores = pred[4:]
            cls = cls_scores.argmax(axis=0)
            best = np.take_along_axis(cls_scores, cls[None, :], axis=0)[0]
            idx = np.flatnonzero(best > self.score_threshold)
            rows = pred[:4, idx].T
        else:
            k = _EXTRA[self.layout]
            cls_scores = pred[:, k:]
            cls = cls_scores.argmax(axis=1)
            best = np.take_along_axis(cls_scores, cls[:, None], axis=1)[:, 0]
            if k == 5:
                best = best * pred[:, 4]
            idx = np.flatnonzero(best > self.score_threshold)
            rows = pred[idx, :4]
        scores = best[idx].astype(np.float32)
        classes = cls[idx].astype(np.intp)
        if idx.size > self.p.nms.max_candidates:
            top = np.argsort(-scores, kind="stable")[: self.p.nms.max_candidates]
            idx, rows, scores, classes = idx[top], rows[top], scores[top], classes[top]
        if self.layout == "yolox":
            cells, steps = self._grid_for(model_w, model_h)
            if cells.shape[0] != pred.shape[0]:
                raise ModelError(
                    f"yolox: the output has {pred.shape[0]} rows, the grid of strides "
                    f"{self.p.strides} at {model_w}×{model_h} has {cells.shape[0]}"
                )
            xy = (rows[:, :2] + cells[idx]) * steps[idx]
            wh = np.exp(rows[:, 2:4]) * steps[idx]
        else:
            xy, wh = rows[:, :2], rows[:, 2:4]
            if self.p.normalized:
                size = np.array([model_w, model_h], np.float32)
                xy, wh = xy * size, wh * size
        boxes = np.concatenate((xy - wh / 2, xy + wh / 2), axis=1).astype(np.float32)
        n = self.p.nms
        keep = batched_nms(
            boxes, scores, classes, n.iou_threshold, n.max_detections,
            class_agnostic=n.class_agnostic,
        )  # fmt: skip
        return boxes[keep], scores[keep], classes[keep]


class YoloDetector(ImageModel):
    """Image → YOLO detections in image pixels. ``times``: pre / invoke / post."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        origin = manifest.name
        if params.num_classes and manifest.labels and len(manifest.labels) != params.num_classes:
            raise ManifestError(
                f"{origin}: labels has {len(manifest.labels)} entries, decoder.num_classes is "
                f"{params.num_classes}; give one label per class"
            )
        self._bind(manifest, backend, "yolo")
        self._out = output_index(backend, params.output, "output", origin)
        spec = backend.outputs[self._out]
        nc = params.num_classes or (len(manifest.labels) or None)
        where = f"{origin}: decoder: output {spec.name!r}"
        layout, nc = resolve_layout(params, nc, spec.shape, where)
        if manifest.labels and len(manifest.labels) != nc:
            raise ManifestError(
                f"{origin}: labels has {len(manifest.labels)} entries, the model scores {nc} "
                f"classes (output {spec.name!r} {shape_text(spec.shape)}); give one label per class"
            )
        if layout == "yolox" and spec.shape[1] > 0 and self._pre.fixed_w and self._pre.fixed_h:
            cells = sum((self._pre.fixed_h // s) * (self._pre.fixed_w // s) for s in params.strides)
            if cells != spec.shape[1]:
                raise ManifestError(
                    f"{where} has shape {shape_text(spec.shape)}; strides {params.strides} at "
                    f"{self._pre.fixed_w}×{self._pre.fixed_h} make N={cells}, expected "
                    f"[1, {cells}, {5 + nc}]; fix decoder.strides"
                )
        self._decoder = YoloDecoder(params, layout, nc)
        self._out_quant = spec.quantization
        self._labels = manifest.labels
        self.score_threshold = manifest.thresholds.get("score", 0.25)

    @property
    def layout(self) -> Layout:
        return self._decoder.layout

    @property
    def score_threshold(self) -> float:
        return self._decoder.score_threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self._decoder.score_threshold = float(value)

    def detect(self, image: Image) -> list[Detection]:
        with self.times.stage("pre"):
            tensor, transform = self._pre(image)
        with self.times.stage("invoke"):
            raw = self._backend.run({self._input_name: tensor})[self._out]
        with self.times.stage("post"):
            dets = self.postprocess(as_float(raw, self._out_quant), transform)
        return dets

    def postprocess(self, raw: Floats, transform: Transform) -> list[Detection]:
        extra = _EXTRA[self.layout]
        channels = -1 if raw.ndim != 3 else raw.shape[1 if self.layout == "yolov8" else 2]
        if channels != extra + self._decoder.nc:
            raise ModelError(
                f"{self.manifest.name}: the yolo output has shape {list(raw.shape)}, expected "
                f"{extra + self._decoder.nc} values per box ({self.layout})"
            )
        boxes, scores, classes = self._decoder(raw, transform.model_w, transform.model_h)
        return to_detections(boxes, scores, classes, transform, self._labels)


def build(manifest: Manifest, backend: Backend, params: Params) -> YoloDetector:
    return YoloDetector(manifest, backend, params)
