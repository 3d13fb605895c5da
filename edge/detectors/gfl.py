"""GFL decoding for the NanoDet / PicoDet family.

Per stride the model outputs class scores ``[1, N, num_classes]`` (sigmoid already
applied, or logits with ``sigmoid = true``) and box distributions ``[1, N,
4 × (reg_max + 1)]``: for each side (left, top, right, bottom) a distribution over
``reg_max + 1`` bins (distribution focal loss). The distance is the softmax-weighted
mean bin × stride, measured from the cell centre ``((col + centre_offset) × stride,
(row + centre_offset) × stride)``, and boxes are clipped to the input, as NanoDet's
``Integral`` + ``distance2bbox`` do. ``N`` is ``ceil(H / stride) × ceil(W / stride)``,
row-major. Then class-aware (or class-agnostic) hard NMS and a maximum count, as
NanoDet's ``multiclass_nms``. Every candidate (box, class) pair above the score
threshold takes part, so one box may carry two labels, as in NanoDet.

Output shapes are checked against the options when the detector is built.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.detectors.base import Detection, Image
from edge.detectors.image_model import ImageModel
from edge.detectors.nms import batched_nms
from edge.detectors.outputs import output_index
from edge.detectors.preprocess import Transform
from edge.errors import ManifestError
from edge.models.manifest import Manifest
from edge.runtime.base import Array, Backend

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NmsOptions(_Options):
    iou_threshold: float = Field(
        default=0.6, ge=0, le=1, description="overlap that suppresses (NanoDet: 0.6)"
    )
    class_agnostic: bool = Field(
        default=False, description="true: boxes of every class suppress each other"
    )
    max_detections: int = Field(
        default=100, gt=0, description="at most this many detections (NanoDet: 100)"
    )
    pre_nms_top_k: int = Field(
        default=1000, gt=0, description="only the best this many candidates enter NMS"
    )


class Params(_Options):
    """NanoDet / PicoDet (GFL): per-stride class scores and distribution-focal box distances."""

    strides: list[int] = Field(
        min_length=1, description="one stride per output level, e.g. [8, 16, 32]"
    )
    reg_max: int = Field(default=7, ge=0, description="bins per side minus one (NanoDet-m: 10)")
    centre_offset: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="cell centre within its cell: 0.5 (NanoDet v0.x GFLHead) or 0 "
        "(NanoDet-Plus, PicoDet)",
    )
    scores_output: list[int | str] = Field(
        min_length=1, description="per stride: index or name of the class-score output"
    )
    boxes_output: list[int | str] = Field(
        min_length=1, description="per stride: index or name of the box-distribution output"
    )
    sigmoid: bool = Field(default=False, description="apply a sigmoid to the scores (logits)")
    nms: NmsOptions = Field(default_factory=NmsOptions, description="NMS options")

    @model_validator(mode="after")
    def _per_stride(self) -> Params:
        n = len(self.strides)
        for name in ("scores_output", "boxes_output"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one entry per stride ({n})")
        if any(s <= 0 for s in self.strides):
            raise ValueError("strides must be positive")
        return self


def centres(strides: list[int], width: int, height: int, offset: float) -> tuple[Floats, Floats]:
    """Cell centres (N, 2) in input pixels and each cell's stride (N,), levels concatenated."""
    xy, st = [], []
    for s in strides:
        fw, fh = math.ceil(width / s), math.ceil(height / s)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        xy.append(np.stack([(xs.ravel() + offset) * s, (ys.ravel() + offset) * s], axis=1))
        st.append(np.full(fw * fh, s))
    return np.concatenate(xy).astype(np.float32), np.concatenate(st).astype(np.float32)


class GflDecoder:
    """Concatenated scores (N, C) and distributions (N, 4 (R+1)) → boxes in input pixels."""

    def __init__(self, params: Params, width: int, height: int) -> None:
        self.p = params
        self.width, self.height = width, height
        self.centres, self.strides = centres(params.strides, width, height, params.centre_offset)
        self.bins = np.arange(params.reg_max + 1, dtype=np.float32)
        self.score_threshold = 0.35

    def distances(self, dist: Floats) -> Floats:
        """(K, 4 (R+1)) distributions → (K, 4) distances in bins (softmax · arange)."""
        logits = dist.reshape(dist.shape[0], 4, self.p.reg_max + 1)
        e = np.exp(logits - logits.max(axis=2, keepdims=True))
        out: Floats = (e @ self.bins) / e.sum(axis=2)
        return out

    def __call__(self, scores: Floats, dist: Floats) -> tuple[Floats, Floats, Ints]:
        """(M, 4) xyxy boxes in input pixels, scores (M,), classes (M,), best first."""
        p = self.p
        thr = self.score_threshold
        if p.sigmoid:  # threshold the logits: only candidates pay for the sigmoid
            thr = math.log(thr / (1.0 - thr)) if 0.0 < thr < 1.0 else thr
        rows, cls = np.nonzero(scores >= thr)
        if rows.size == 0:
            return _EMPTY_BOXES, _EMPTY_SCORES, _EMPTY_CLASSES
        best: Floats = scores[rows, cls].astype(np.float32)
        if p.sigmoid:
            best = (1.0 / (1.0 + np.exp(-best))).astype(np.float32)
        if best.size > p.nms.pre_nms_top_k:
            top = np.argsort(-best, kind="stable")[: p.nms.pre_nms_top_k]
            rows, cls, best = rows[top], cls[top], best[top]
        cells, inverse = np.unique(rows, return_inverse=True)
        d = self.distances(dist[cells]) * self.strides[cells, None]
        c = self.centres[cells]
        boxes = np.empty((cells.size, 4), np.float32)
        boxes[:, 0] = np.clip(c[:, 0] - d[:, 0], 0, self.width)
        boxes[:, 1] = np.clip(c[:, 1] - d[:, 1], 0, self.height)
        boxes[:, 2] = np.clip(c[:, 0] + d[:, 2], 0, self.width)
        boxes[:, 3] = np.clip(c[:, 1] + d[:, 3], 0, self.height)
        boxes = boxes[inverse]
        classes = cls.astype(np.intp)
        kept = batched_nms(
            boxes,
            best,
            classes,
            p.nms.iou_threshold,
            p.nms.max_detections,
            class_agnostic=p.nms.class_agnostic,
        )
        return boxes[kept], best[kept], classes[kept]


_EMPTY_BOXES: Floats = np.zeros((0, 4), np.float32)
_EMPTY_SCORES: Floats = np.zeros(0, np.float32)
_EMPTY_CLASSES: Ints = np.zeros(0, np.intp)


class GflDetector(ImageModel):
    """Image → detections in image pixels. ``times``: pre / invoke / post."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        origin = manifest.name
        image = self._bind(manifest, backend, "gfl")
        if image.resize == "limit_side" or self._pre.fixed_w is None:
            raise ManifestError(f"{origin}: input.resize: gfl needs a fixed input size")
        assert self._pre.fixed_h is not None
        width, height = self._pre.fixed_w, self._pre.fixed_h
        self._scores_i = [
            output_index(backend, w, f"scores_output[{i}]", origin)
            for i, w in enumerate(params.scores_output)
        ]
        self._boxes_i = [
            output_index(backend, w, f"boxes_output[{i}]", origin)
            for i, w in enumerate(params.boxes_output)
        ]
        self._check_shapes(params, width, height, origin)
        self._decoder = GflDecoder(params, width, height)
        self._labels = manifest.labels
        self.score_threshold = manifest.thresholds.get("score", 0.35)

    def _check_shapes(self, params: Params, width: int, height: int, origin: str) -> None:
        nc = len(self.manifest.labels) or None
        bins = 4 * (params.reg_max + 1)
        outs = self._backend.outputs
        for i, s in enumerate(params.strides):
            n = math.ceil(width / s) * math.ceil(height / s)
            for field, idx, last in (
                ("scores_output", self._scores_i[i], nc),
                ("boxes_output", self._boxes_i[i], bins),
            ):
                shape = tuple(outs[idx].shape)
                want = (1, n, last)
                ok = len(shape) == 3 and all(
                    w is None or d < 0 or d == w for d, w in zip(shape, want, strict=True)
                )
                if not ok:
                    shown = f"[1, {n}, {last if last is not None else 'num_classes'}]"
                    raise ManifestError(
                        f"{origin}: decoder.{field}[{i}]: output {outs[idx].name!r} has shape "
                        f"{list(shape)}, expected {shown} for stride {s} on a {width}×{height} "
                        f"input (reg_max {params.reg_max}, {nc or 'any'} labels); fix "
                        "decoder.strides, reg_max, the output order or labels"
                    )

    @property
    def score_threshold(self) -> float:
        return self._decoder.score_threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self._decoder.score_threshold = float(value)

    def raw(self, outs: list[Array]) -> tuple[Floats, Floats]:
        """The model's outputs as concatenated (N, C) scores and (N, 4 (R+1)) distributions."""

        def rows(i: int) -> Floats:
            arr = self._output(outs, i)
            return arr.reshape(-1, arr.shape[-1])

        scores = np.concatenate([rows(i) for i in self._scores_i])
        return scores, np.concatenate([rows(i) for i in self._boxes_i])

    def detect(self, image: Image) -> list[Detection]:
        with self.times.stage("pre"):
            tensor, transform = self._pre(image)
        with self.times.stage("invoke"):
            outs = self._backend.run({self._input_name: tensor})
        with self.times.stage("post"):
            dets = self.postprocess(outs, transform)
        return dets

    def postprocess(self, outs: list[Array], transform: Transform) -> list[Detection]:
        boxes, scores, classes = self._decoder(*self.raw(outs))
        if scores.size == 0:
            return []
        xs, ys = transform.to_image(boxes[:, 0::2], boxes[:, 1::2])
        np.clip(xs, 0, transform.image_w, out=xs)
        np.clip(ys, 0, transform.image_h, out=ys)
        labels = self._labels
        return [
            Detection(
                labels[c] if c < len(labels) else str(c),
                float(scores[i]),
                (float(xs[i, 0]), float(ys[i, 0]), float(xs[i, 1]), float(ys[i, 1])),
            )
            for i, c in enumerate(classes.tolist())
        ]


def build(manifest: Manifest, backend: Backend, params: Params) -> GflDetector:
    return GflDetector(manifest, backend, params)
