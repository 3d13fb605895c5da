"""Models whose graph already outputs final boxes; decoding is reading them.

``decoder.style`` names the kind of graph:

- ``tflite_postprocess``: TFLite's ``TFLite_Detection_PostProcess``: boxes ``[1, N, 4]``
  (ymin, xmin, ymax, xmax in 0..1), classes ``[1, N]``, scores ``[1, N]``, count ``[1]``,
  in that output order;
- ``tf_od_api``: the TF Object Detection API's ``detection_boxes``,
  ``detection_classes``, ``detection_scores``, ``num_detections`` (found by name; class
  ids start at 1, so ``label_offset`` defaults to 1);
- ``end_to_end``: ``[1, N, 6]`` rows x1, y1, x2, y2, score, class in input pixels
  (Ultralytics ``nms=True`` / YOLOv10 / YOLO26 exports; ``normalized`` for 0..1).

Boxes are un-letterboxed and clipped to the image; rows scoring at or below
``thresholds.score`` are dropped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from edge.detectors.base import Detection, Image
from edge.detectors.image_model import ImageModel
from edge.detectors.outputs import as_float, output_index, shape_text, to_detections
from edge.detectors.preprocess import Transform
from edge.errors import ManifestError, ModelError
from edge.models.manifest import Manifest
from edge.runtime.base import Array, Backend

Floats = npt.NDArray[np.float32]
Style = Literal["tflite_postprocess", "end_to_end", "tf_od_api"]
_ROLES = ("boxes", "classes", "scores", "count")
_TF_OD_NAMES = {
    "boxes": "detection_boxes",
    "classes": "detection_classes",
    "scores": "detection_scores",
    "count": "num_detections",
}


class Params(BaseModel):
    """The ``decoder`` table of a ``detections`` manifest (``None``: the style's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Style = Field(description="which kind of post-processed graph (module docstring)")
    output: int | str = Field(default=0, description="end_to_end: index or name of the output")
    boxes_output: int | str | None = Field(default=None, description="index or name")
    classes_output: int | str | None = Field(default=None, description="index or name")
    scores_output: int | str | None = Field(default=None, description="index or name")
    count_output: int | str | None = Field(default=None, description="index or name")
    box_order: Literal["yxyx", "xyxy"] | None = Field(
        default=None, description="coordinate order; default yxyx, xyxy for end_to_end"
    )
    normalized: bool | None = Field(
        default=None,
        description="boxes in 0..1 of the input; default true, false for end_to_end (pixels)",
    )
    label_offset: int | None = Field(
        default=None, description="subtracted from class ids before the label look-up; "
        "default 1 for tf_od_api, else 0",
    )  # fmt: skip
    max_detections: int | None = Field(default=None, gt=0, description="cap; None for no cap")


def _role_index(backend: Backend, params: Params, role: str, origin: str) -> int:
    which = getattr(params, f"{role}_output")
    if which is not None:
        return output_index(backend, which, f"{role}_output", origin)
    if params.style == "tflite_postprocess":
        return output_index(backend, _ROLES.index(role), f"{role}_output", origin)
    name = _TF_OD_NAMES[role]
    names = [o.name for o in backend.outputs]
    for i, n in enumerate(names):
        if n == name or n.split(":")[0] == name:
            return i
    raise ManifestError(
        f"{origin}: decoder.{role}_output: no output named {name!r}; the model has {names}; "
        f"name it in decoder.{role}_output"
    )


class DetectionsDetector(ImageModel):
    """Image → the model's own final boxes in image pixels. ``times``: pre / invoke / post."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        origin = manifest.name
        self._bind(manifest, backend, "detections")
        self.params = params
        e2e = params.style == "end_to_end"
        self._order = params.box_order or ("xyxy" if e2e else "yxyx")
        self._normalized = (not e2e) if params.normalized is None else params.normalized
        default_offset = 1 if params.style == "tf_od_api" else 0
        self._offset = default_offset if params.label_offset is None else params.label_offset
        self._labels = manifest.labels
        if e2e:
            self._idx = [output_index(backend, params.output, "output", origin)]
        else:
            self._idx = [_role_index(backend, params, r, origin) for r in _ROLES]
        self._check_shapes(origin)
        self.score_threshold = manifest.thresholds.get("score", 0.25 if e2e else 0.5)

    def _check_shapes(self, origin: str) -> None:
        specs = [self._backend.outputs[i] for i in self._idx]

        def bad(role: str, want: str) -> ManifestError:
            spec = specs[_ROLES.index(role) if len(specs) > 1 else 0]
            return ManifestError(
                f"{origin}: decoder: output {spec.name!r} ({role}) has shape "
                f"{shape_text(spec.shape)}; style {self.params.style!r} expects {want}; "
                "fix decoder.style or the decoder's *_output fields"
            )

        def fits(shape: tuple[int, ...], want: tuple[int, ...]) -> bool:
            return len(shape) == len(want) and all(
                w < 0 or d < 0 or d == w for d, w in zip(shape, want, strict=True)
            )

        if self.params.style == "end_to_end":
            if not fits(specs[0].shape, (1, -1, 6)):
                raise bad("boxes", "[1, N, 6] (x1, y1, x2, y2, score, class)")
            return
        boxes, classes, scores, count = (s.shape for s in specs)
        if not fits(boxes, (1, -1, 4)):
            raise bad("boxes", "[1, N, 4]")
        n = boxes[1]
        for role, shape in (("classes", classes), ("scores", scores)):
            if not fits(shape, (1, n)):
                raise bad(role, f"[1, {n if n > 0 else 'N'}] (one per box)")
        if len(count) > 2 or any(d > 1 for d in count):
            raise bad("count", "[1] (the number of valid boxes)")

    def detect(self, image: Image) -> list[Detection]:
        with self.times.stage("pre"):
            tensor, transform = self._pre(image)
        with self.times.stage("invoke"):
            outs = self._backend.run({self._input_name: tensor})
        with self.times.stage("post"):
            dets = self.postprocess([outs[i] for i in self._idx], transform)
        return dets

    def postprocess(self, outs: list[Array], transform: Transform) -> list[Detection]:
        arrays = [as_float(a, self._quant[i]) for a, i in zip(outs, self._idx, strict=True)]
        if self.params.style == "end_to_end":
            rows = arrays[0].reshape(-1, arrays[0].shape[-1])
            if rows.shape[1] != 6:
                raise ModelError(
                    f"{self.manifest.name}: end_to_end output has shape {list(arrays[0].shape)}, "
                    "expected [1, N, 6]"
                )
            boxes, scores, classes = rows[:, :4], rows[:, 4], rows[:, 5]
        else:
            boxes = arrays[0].reshape(-1, 4)
            classes, scores = arrays[1].reshape(-1), arrays[2].reshape(-1)
            n = min(int(arrays[3].reshape(-1)[0]), boxes.shape[0]) if arrays[3].size else 0
            boxes, classes, scores = boxes[:n], classes[:n], scores[:n]
        if self._order == "yxyx":
            boxes = boxes[:, [1, 0, 3, 2]]
        keep = np.flatnonzero(scores > self.score_threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        if self.params.max_detections is not None:
            keep = keep[: self.params.max_detections]
        boxes = boxes[keep]
        if self._normalized:
            boxes = boxes * np.array([transform.model_w, transform.model_h] * 2, np.float32)
        x1, x2 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
        y1, y2 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
        ordered: Floats = np.stack((x1, y1, x2, y2), axis=1).astype(np.float32)
        cls = np.rint(classes[keep]).astype(np.intp) - self._offset
        return to_detections(ordered, scores[keep].astype(np.float32), cls, transform, self._labels)


def build(manifest: Manifest, backend: Backend, params: Params) -> DetectionsDetector:
    return DetectionsDetector(manifest, backend, params)
