"""What box decoders share: finding a model output, dequantising it, and turning boxes in
model-input pixels into ``Detection`` objects in image pixels (un-letterboxed, clipped)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.detectors.base import Detection
from edge.detectors.preprocess import Transform
from edge.errors import ManifestError
from edge.runtime.base import Array, Backend, Quantization

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


def output_index(backend: Backend, which: int | str, field: str, origin: str) -> int:
    """The index of output ``which`` (an index or a name); the error names ``field``."""
    names = [o.name for o in backend.outputs]
    if isinstance(which, int):
        if 0 <= which < len(names):
            return which
        raise ManifestError(
            f"{origin}: decoder.{field}: index {which} out of range; the model has outputs {names}"
        )
    if which in names:
        return names.index(which)
    raise ManifestError(f"{origin}: decoder.{field}: no output {which!r}; the model has {names}")


def as_float(arr: Array, q: Quantization | None) -> Floats:
    """``arr`` as float32, dequantised when it is an integer tensor with quantization."""
    if q is not None and np.issubdtype(arr.dtype, np.integer):
        return ((arr.astype(np.float32) - q.zero_point) * q.scale).astype(np.float32)
    return np.asarray(arr, dtype=np.float32)


def to_detections(
    boxes: Floats, scores: Floats, classes: Ints, transform: Transform, labels: list[str]
) -> list[Detection]:
    """(N, 4) xyxy boxes in model-input pixels → detections in image pixels, clipped to
    the image (as Ultralytics' ``scale_boxes`` + ``clip_boxes``); unknown classes keep
    their index as the label."""
    if boxes.shape[0] == 0:
        return []
    xs, ys = transform.to_image(boxes[:, 0::2], boxes[:, 1::2])
    xs = np.clip(xs, 0.0, transform.image_w)
    ys = np.clip(ys, 0.0, transform.image_h)
    out = []
    for i in range(boxes.shape[0]):
        c = int(classes[i])
        label = labels[c] if 0 <= c < len(labels) else str(c)
        box = (float(xs[i, 0]), float(ys[i, 0]), float(xs[i, 1]), float(ys[i, 1]))
        out.append(Detection(label, float(scores[i]), box))
    return out


def shape_text(shape: tuple[int, ...]) -> str:
    """``[1, 15, 21504]``, with ``?`` for a dynamic dimension."""
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"
