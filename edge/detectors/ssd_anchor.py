"""SSD-anchor decoding for the MediaPipe / BlazeFace family.

Mirrors MediaPipe's ``SsdAnchorsCalculator`` (anchors, made once at build time),
``TensorsToDetectionsCalculator`` (box and keypoint layout, sigmoid scores) and
``NonMaxSuppressionCalculator`` (weighted or hard NMS). Every option comes from
the manifest's ``decoder`` table, so another model of the family is a manifest.
Scores are thresholded on the raw logits first: only candidates are decoded.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.detectors.base import Detection, Image
from edge.detectors.image_model import ImageModel
from edge.detectors.labels import check_label_count
from edge.detectors.nms import nms, weighted_nms
from edge.detectors.outputs import output_index
from edge.detectors.preprocess import Transform
from edge.errors import ManifestError
from edge.models.manifest import Manifest
from edge.runtime.base import Array, Backend

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnchorOptions(_Options):
    """MediaPipe's ``SsdAnchorsCalculatorOptions``."""

    num_layers: int = Field(gt=0, description="number of feature-map layers")
    min_scale: float = Field(gt=0, description="anchor scale of the first layer")
    max_scale: float = Field(gt=0, description="anchor scale of the last layer")
    input_size_width: int = Field(gt=0, description="model input width in pixels")
    input_size_height: int = Field(gt=0, description="model input height in pixels")
    anchor_offset_x: float = Field(default=0.5, description="anchor centre within its cell")
    anchor_offset_y: float = Field(default=0.5, description="anchor centre within its cell")
    strides: list[int] = Field(description="one stride per layer")
    feature_map_width: list[int] = Field(
        default_factory=list, description="per-layer feature map widths (default: from strides)"
    )
    feature_map_height: list[int] = Field(
        default_factory=list, description="per-layer feature map heights (default: from strides)"
    )
    aspect_ratios: list[float] = Field(default=[1.0], description="anchor aspect ratios per cell")
    interpolated_scale_aspect_ratio: float = Field(
        default=1.0, description="extra anchor between two scales; <= 0 adds none"
    )
    reduce_boxes_in_lowest_layer: bool = Field(
        default=False, description="use three fixed anchors in layer 0"
    )
    fixed_anchor_size: bool = Field(
        default=False, description="anchor width/height are 1 (regressors are absolute)"
    )

    @model_validator(mode="after")
    def _per_layer(self) -> AnchorOptions:
        if len(self.strides) != self.num_layers:
            raise ValueError(
                f"strides has {len(self.strides)} entries, num_layers is {self.num_layers}"
            )
        for name in ("feature_map_width", "feature_map_height"):
            sizes = getattr(self, name)
            if sizes and len(sizes) != self.num_layers:
                raise ValueError(f"{name} must be empty or have num_layers entries")
        return self


class NmsOptions(_Options):
    iou_threshold: float = Field(default=0.3, ge=0, le=1, description="overlap that suppresses")
    algorithm: Literal["weighted", "hard"] = Field(
        default="weighted", description="weighted: merge overlaps by score; hard: drop them"
    )
    max_detections: int | None = Field(default=None, gt=0, description="cap; None for no cap")


class Params(_Options):
    """Decoder parameters: anchors, MediaPipe's tensors-to-detections options, NMS."""

    anchors: AnchorOptions
    boxes_output: int | str = Field(default=0, description="index or name of the box output")
    scores_output: int | str = Field(default=1, description="index or name of the score output")
    num_boxes: int | None = Field(default=None, gt=0, description="anchors / boxes; checked")
    num_coords: int = Field(default=16, gt=0, description="values per box in the box output")
    box_coord_offset: int = Field(default=0, ge=0)
    keypoint_coord_offset: int = Field(default=4, ge=0)
    num_keypoints: int = Field(default=0, ge=0)
    num_values_per_keypoint: int = Field(default=2, ge=2)
    x_scale: float = Field(default=1.0, gt=0)
    y_scale: float = Field(default=1.0, gt=0)
    w_scale: float = Field(default=1.0, gt=0)
    h_scale: float = Field(default=1.0, gt=0)
    reverse_output_order: bool = Field(
        default=False, description="true: x, y, w, h order; false: y, x, h, w"
    )
    apply_exponential_on_box_size: bool = False
    sigmoid_score: bool = True
    score_clipping_thresh: float | None = Field(
        default=None, gt=0, description="clip raw scores to ±this before the sigmoid"
    )
    nms: NmsOptions = Field(default_factory=NmsOptions)

    @model_validator(mode="after")
    def _layout(self) -> Params:
        if self.box_coord_offset + 4 > self.num_coords:
            raise ValueError("box_coord_offset + 4 exceeds num_coords")
        end = self.keypoint_coord_offset + self.num_keypoints * self.num_values_per_keypoint
        if self.num_keypoints and end > self.num_coords:
            raise ValueError(
                "keypoint_coord_offset + num_keypoints * num_values_per_keypoint exceeds num_coords"
            )
        return self


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def generate_anchors(o: AnchorOptions) -> Floats:
    """(N, 4) anchors as x_center, y_center, width, height, normalised to the input."""
    layers: list[Floats] = []
    n = o.num_layers
    layer = 0
    while layer < n:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < n and o.strides[last] == o.strides[layer]:
            scale = _scale(o.min_scale, o.max_scale, last, n)
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += o.aspect_ratios
                scales += [scale] * len(o.aspect_ratios)
                if o.interpolated_scale_aspect_ratio > 0.0:
                    nxt = 1.0 if last == n - 1 else _scale(o.min_scale, o.max_scale, last + 1, n)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        sq = np.sqrt(np.asarray(ratios, dtype=np.float64))
        widths = np.asarray(scales) * sq
        heights = np.asarray(scales) / sq
        if o.feature_map_height:
            fh, fw = o.feature_map_height[layer], o.feature_map_width[layer]
        else:
            fh = math.ceil(o.input_size_height / o.strides[layer])
            fw = math.ceil(o.input_size_width / o.strides[layer])
        k = len(ratios)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        grid = np.empty((fh, fw, k, 4), dtype=np.float64)
        grid[..., 0] = ((xs + o.anchor_offset_x) / fw)[..., None]
        grid[..., 1] = ((ys + o.anchor_offset_y) / fh)[..., None]
        grid[..., 2] = 1.0 if o.fixed_anchor_size else widths
        grid[..., 3] = 1.0 if o.fixed_anchor_size else heights
        layers.append(grid.reshape(-1, 4).astype(np.float32))
        layer = last
    return np.concatenate(layers)


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


class SsdAnchorDecoder:
    """Raw box and score tensors → model-normalised detections (values, scores, classes)."""

    def __init__(self, params: Params, anchors: Floats) -> None:
        self.p = params
        self.anchors = anchors
        self.score_threshold = 0.5

    def __call__(self, raw_boxes: Floats, raw_scores: Floats) -> tuple[Floats, Floats, Ints]:
        """Returns (M, 4 + 2K) xyxy + keypoint xy in 0..1 of the model input, scores, classes."""
        p = self.p
        n = self.anchors.shape[0]
        rb = raw_boxes.reshape(n, p.num_coords)
        rs = raw_scores.reshape(n, -1)
        if rs.shape[1] == 1:
            best = rs[:, 0]
            cls = None
        else:
            cls_all = rs.argmax(axis=1)
            best = rs[np.arange(n), cls_all]
            cls = cls_all
        thr = self.score_threshold
        if p.sigmoid_score:
            thr_raw = _logit(thr)
            if p.score_clipping_thresh is not None and thr_raw > p.score_clipping_thresh:
                thr_raw = p.score_clipping_thresh
        else:
            thr_raw = thr
        idx = np.flatnonzero(best >= thr_raw)
        if idx.size == 0:
            return _EMPTY_VALUES, _EMPTY_SCORES, _EMPTY_CLASSES
        scores: Floats = best[idx].astype(np.float32)
        if p.sigmoid_score:
            if p.score_clipping_thresh is not None:
                c = p.score_clipping_thresh
                np.clip(scores, -c, c, out=scores)
            scores = (1.0 / (1.0 + np.exp(-scores))).astype(np.float32)
        values, ok = self._decode(rb[idx], self.anchors[idx])
        classes = np.zeros(idx.size, np.intp) if cls is None else cls[idx].astype(np.intp)
        if not ok.all():
            values, scores, classes = values[ok], scores[ok], classes[ok]
        return values, scores, classes

    def _decode(self, rb: Floats, a: Floats) -> tuple[Floats, npt.NDArray[np.bool_]]:
        p = self.p
        o = p.box_coord_offset
        if p.reverse_output_order:
            xc, yc, w, h = rb[:, o], rb[:, o + 1], rb[:, o + 2], rb[:, o + 3]
        else:
            yc, xc, h, w = rb[:, o], rb[:, o + 1], rb[:, o + 2], rb[:, o + 3]
        aw, ah = a[:, 2], a[:, 3]
        xc = xc / p.x_scale * aw + a[:, 0]
        yc = yc / p.y_scale * ah + a[:, 1]
        if p.apply_exponential_on_box_size:
            w = np.exp(w / p.w_scale) * aw
            h = np.exp(h / p.h_scale) * ah
        else:
            w = w / p.w_scale * aw
            h = h / p.h_scale * ah
        k = p.num_keypoints
        out = np.empty((rb.shape[0], 4 + 2 * k), dtype=np.float32)
        out[:, 0] = xc - w * 0.5
        out[:, 1] = yc - h * 0.5
        out[:, 2] = xc + w * 0.5
        out[:, 3] = yc + h * 0.5
        if k:
            ko = p.keypoint_coord_offset
            kp = rb[:, ko : ko + k * p.num_values_per_keypoint].reshape(
                -1, k, p.num_values_per_keypoint
            )
            ix, iy = (0, 1) if p.reverse_output_order else (1, 0)
            out[:, 4::2] = kp[:, :, ix] / p.x_scale * aw[:, None] + a[:, 0, None]
            out[:, 5::2] = kp[:, :, iy] / p.y_scale * ah[:, None] + a[:, 1, None]
        return out, (w > 0) & (h > 0)


_EMPTY_VALUES: Floats = np.zeros((0, 4), np.float32)
_EMPTY_SCORES: Floats = np.zeros(0, np.float32)
_EMPTY_CLASSES: Ints = np.zeros(0, np.intp)


class SsdAnchorDetector(ImageModel):
    """Image → detections in image pixels, with keypoints. ``times``: pre / invoke / post."""

    def __init__(
        self,
        manifest: Manifest,
        backend: Backend,
        params: Params,
        score_threshold: float | None = None,
    ) -> None:
        origin = manifest.name
        self._bind(manifest, backend, "ssd_anchor")
        self._boxes_i = output_index(backend, params.boxes_output, "boxes_output", origin)
        self._scores_i = output_index(backend, params.scores_output, "scores_output", origin)
        anchors = generate_anchors(params.anchors)
        self._check_counts(anchors.shape[0], params, origin)
        self._check_classes(anchors.shape[0], manifest, origin)
        self._decoder = SsdAnchorDecoder(params, anchors)
        self._nms = params.nms
        self._labels = manifest.labels
        self._num_keypoints = params.num_keypoints
        default = manifest.thresholds.get("score", 0.5)
        self.score_threshold = default if score_threshold is None else score_threshold

    def _check_counts(self, n: int, params: Params, origin: str) -> None:
        if params.num_boxes is not None and params.num_boxes != n:
            raise ManifestError(
                f"{origin}: decoder.num_boxes is {params.num_boxes} but the anchor options "
                f"make {n} anchors; fix decoder.anchors or num_boxes"
            )
        shape = self._backend.outputs[self._boxes_i].shape
        size = math.prod(d for d in shape if d > 0)
        if any(d < 0 for d in shape):
            return
        if size != n * params.num_coords:
            raise ManifestError(
                f"{origin}: decoder: the box output has shape {shape}, expected {n} anchors × "
                f"{params.num_coords} coords; fix decoder.anchors or num_coords"
            )

    def _check_classes(self, n: int, manifest: Manifest, origin: str) -> None:
        shape = self._backend.outputs[self._scores_i].shape
        if all(d > 0 for d in shape) and math.prod(shape) % n == 0:
            check_label_count(manifest, math.prod(shape) // n, origin)

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
            outs = self._backend.run({self._input_name: tensor})
        with self.times.stage("post"):
            dets = self._postprocess(outs, transform)
        return dets

    def _postprocess(self, outs: list[Array], transform: Transform) -> list[Detection]:
        values, scores, classes = self._decoder(
            self._output(outs, self._boxes_i), self._output(outs, self._scores_i)
        )
        if scores.size == 0:
            return []
        nms_o = self._nms
        if nms_o.algorithm == "weighted":
            values, scores, kept = weighted_nms(
                values, scores, nms_o.iou_threshold, nms_o.max_detections
            )
        else:
            kept = nms(values[:, :4], scores, nms_o.iou_threshold, nms_o.max_detections)
            values, scores = values[kept], scores[kept]
        classes = classes[kept]
        xs, ys = transform.to_image(
            values[:, 0::2] * transform.model_w, values[:, 1::2] * transform.model_h
        )
        return [
            self._detection(xs[i], ys[i], float(scores[i]), int(classes[i]))
            for i in range(len(scores))
        ]

    def _detection(self, xs: Floats, ys: Floats, score: float, cls: int) -> Detection:
        label = self._labels[cls] if cls < len(self._labels) else str(cls)
        box = (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))
        kps = [(float(x), float(y)) for x, y in zip(xs[2:], ys[2:], strict=True)]
        return Detection(label, score, box, kps if self._num_keypoints else None)


def build(manifest: Manifest, backend: Backend, params: Params) -> SsdAnchorDetector:
    return SsdAnchorDetector(manifest, backend, params)
