"""FP32 vs converted on an evaluation set: output agreement, the task metric through the
real decoder, median latency of both on this machine, and size.

Task metric: box F1 at IoU 0.5 against the FP32 model's boxes of the same label for image
detectors; top-1 agreement for classifier-shaped outputs (N×C); otherwise the lowest
output cosine.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from converters.calibration import CalibrationSet
from converters.errors import ConversionError
from edge import progress
from edge.boxes import iou
from edge.detectors import DECODERS, ImageDetector, build_detector, decoder_entry
from edge.detectors.preprocess import ImagePreprocessor
from edge.media.image import IMAGE_SUFFIXES, read_image
from edge.models.manifest import ImageInput, Manifest
from edge.runtime import BackendOptions, TensorSpec, load_backend
from edge.runtime.base import Array, Backend

Box = tuple[float, float, float, float]


@dataclass
class Report:
    """What the conversion cost and gained; written as report.json and report.md."""

    profile: str
    recipe: dict[str, Any]
    source_model: str
    eval_set: str
    samples: int
    task_metric: str
    task_value: float
    cosine_min: float
    cosine_mean: float
    max_abs_err: float
    latency_fp32_ms: float
    latency_converted_ms: float
    speedup: float
    size_fp32: int
    size_converted: int
    size_ratio: float
    threads: int
    conversion_s: float = 0.0
    excluded_nodes: list[str] = field(default_factory=list)
    float_ops: dict[str, int] = field(default_factory=dict)  # ONNX INT8: nodes left in float
    metric_fallback: str = ""  # why the task metric is not the one the manifest asks for
    auto_fallback: dict[str, Any] = field(default_factory=dict)  # seed, method, rounds, notes
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("per_sample")
        return d


def match_counts(
    ref: list[Box],
    got: list[Box],
    thr: float = 0.5,
    labels: tuple[list[str], list[str]] | None = None,
) -> tuple[int, int, int]:
    """Greedy one-to-one matching by IoU: (true positives, false positives, false negatives).
    With ``labels`` (FP32's, converted's), a box matches only a box of the same label: a
    cat that became a dog is a miss and a false positive, not a hit."""
    same = (lambda i, j: labels[0][i] == labels[1][j]) if labels else (lambda i, j: True)
    pairs = sorted(
        ((iou(r, g), i, j) for i, r in enumerate(ref) for j, g in enumerate(got) if same(i, j)),
        reverse=True,
    )
    used_r: set[int] = set()
    used_g: set[int] = set()
    for score, i, j in pairs:
        if score < thr:
            break
        if i not in used_r and j not in used_g:
            used_r.add(i)
            used_g.add(j)
    tp = len(used_r)
    return tp, len(got) - tp, len(ref) - tp


def f1(tp: int, fp: int, fn: int) -> float:
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _as_float(x: Array, spec: TensorSpec) -> npt.NDArray[np.float32]:
    a = np.asarray(x)
    if spec.quantization is not None and np.issubdtype(a.dtype, np.integer):
        q = spec.quantization
        return ((a.astype(np.float32) - q.zero_point) * q.scale).astype(np.float32)
    return a.astype(np.float32)


def _align(ref: npt.NDArray[np.float32], got: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A TFLite (NHWC) output laid out like the ONNX (NCHW) one."""
    if got.shape == ref.shape or got.size != ref.size:
        return got
    if got.ndim == 4 and got.transpose(0, 3, 1, 2).shape == ref.shape:
        return np.ascontiguousarray(got.transpose(0, 3, 1, 2))
    return got.reshape(ref.shape)


def _agreement(ref: list[Array], got: list[Array], specs: list[TensorSpec]) -> tuple[float, float]:
    cos, err = 1.0, 0.0
    for r, g, s in zip(ref, got, specs, strict=True):
        rf = np.asarray(r, dtype=np.float32)
        gf = _align(rf, _as_float(g, s))
        if gf.shape != rf.shape:
            raise ValueError(f"output {s.name!r}: converted shape {gf.shape} vs FP32 {rf.shape}")
        a, b = rf.ravel().astype(np.float64), gf.ravel().astype(np.float64)
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        c = float(a @ b / denom) if denom > 0 else float(np.allclose(a, b))
        cos = min(cos, c)
        err = max(err, float(np.max(np.abs(a - b))) if a.size else 0.0)
    return cos, err


def check_finite(outputs: list[Array], specs: list[TensorSpec], origin: str) -> None:
    """The numeric check on the converted model's outputs: no NaN or infinity."""
    for out, spec in zip(outputs, specs, strict=False):
        arr = np.asarray(out)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise ConversionError(
                f"converted model: output {spec.name!r} has {bad} NaN/inf value(s) of "
                f"{arr.size} on {origin}; the conversion broke the numerics (FP32 is finite "
                "there): keep the nodes feeding it in float (--auto-fallback) or try another recipe"
            )


LATENCY_WARMUP, LATENCY_RUNS = 2, 10


def steady_latency(
    pairs: tuple[tuple[Backend, dict[str, Array]], tuple[Backend, dict[str, Array]]],
) -> tuple[list[float], list[float]]:
    """Invoke milliseconds of the FP32 and the converted model, each run alone in a block
    of ``LATENCY_RUNS`` after ``LATENCY_WARMUP`` warm-up calls, as a device runs one model.

    Timing the two inside the evaluation loop, one call each per input, measured each
    model with caches the other had just evicted (and beside threads of sessions still
    spinning): nanodet-m's FP32 read ~100 ms there against ~51 ms alone, so the report
    claimed 3.0x where a plain loop gave 1.7x."""
    out: list[list[float]] = []
    for backend, feeds in pairs:
        for _ in range(LATENCY_WARMUP):
            backend.run(feeds)
        out.append([_timed(backend, feeds)[1] for _ in range(LATENCY_RUNS)])
    return out[0], out[1]


def _timed(backend: Backend, feeds: dict[str, Array]) -> tuple[list[Array], float]:
    t0 = time.perf_counter()
    out = backend.run(feeds)
    return out, (time.perf_counter() - t0) * 1000.0


def _reference_spec(conv_spec: TensorSpec, ref_spec: TensorSpec, conv_layout: str) -> TensorSpec:
    """The FP32 input spec at the converted model's fixed size, in the FP32 model's layout."""
    shape = conv_spec.shape
    if len(shape) == 4 and conv_layout == "NHWC" and ref_spec.shape[1] in (1, 3):
        shape = (shape[0], shape[3], shape[1], shape[2])
    if any(d < 0 for d in shape):
        shape = ref_spec.shape
    return TensorSpec(ref_spec.name, shape, np.dtype(np.float32))


@dataclass
class Measured:
    metric: str
    value: float
    cosine_min: float = 1.0
    cosine_sum: float = 0.0
    max_abs_err: float = 0.0
    ms_fp32: list[float] = field(default_factory=list)
    ms_converted: list[float] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add_agreement(self, cos: float, err: float) -> None:
        self.cosine_min = min(self.cosine_min, cos)
        self.cosine_sum += cos
        self.max_abs_err = max(self.max_abs_err, err)


def list_images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)


def evaluate_images(
    src: tuple[Manifest, Path], conv: tuple[Manifest, Path], images: list[Path], threads: int
) -> Measured:
    """Detectors: box F1 vs FP32 through the real decoder, plus raw output agreement."""
    (src_m, src_path), (conv_m, conv_path) = src, conv
    assert isinstance(src_m.input, ImageInput) and isinstance(conv_m.input, ImageInput)
    opts = BackendOptions(threads=threads)
    ref_b, conv_b = load_backend(src_path, opts), load_backend(conv_path, opts)
    ref_det = cast(ImageDetector, build_detector(src_m, load_backend(src_path, opts), "FP32"))
    conv_det = cast(ImageDetector, build_detector(conv_m, load_backend(conv_path, opts), "conv"))
    conv_pre = ImagePreprocessor(conv_m.input, conv_b.inputs[0])
    ref_input = conv_m.input.model_copy(update={"layout": src_m.input.layout})
    ref_pre = ImagePreprocessor(
        ref_input, _reference_spec(conv_b.inputs[0], ref_b.inputs[0], conv_m.input.layout)
    )
    tp = fp = fn = 0
    m = Measured("box_f1", 0.0)
    try:
        for path in tqdm(
            images, desc="evaluation", unit="image", leave=False, disable=not progress.enabled()
        ):
            image = read_image(path)
            found_ref, found_conv = ref_det.detect(image), conv_det.detect(image)
            d_ref, d_conv = [d.box for d in found_ref], [d.box for d in found_conv]
            labels = ([d.label for d in found_ref], [d.label for d in found_conv])
            t, p, n = match_counts(d_ref, d_conv, labels=labels)
            tp, fp, fn = tp + t, fp + p, fn + n
            x_conv, _ = conv_pre(image)
            x_ref, _ = ref_pre(image)
            out_c = conv_b.run({conv_b.inputs[0].name: x_conv})
            out_r = ref_b.run({ref_b.inputs[0].name: x_ref})
            check_finite(out_c, conv_b.outputs, path.name)
            c, e = _agreement(out_r, out_c, conv_b.outputs)
            m.add_agreement(c, e)
            m.rows.append({"input": path.name, "fp32_boxes": len(d_ref),
                           "converted_boxes": len(d_conv), "f1": round(f1(t, p, n), 4),
                           "cosine": round(c, 6), "max_abs_err": round(e, 6)})  # fmt: skip
        if m.rows:  # on the last image's tensors, each model alone
            m.ms_fp32, m.ms_converted = steady_latency(
                ((ref_b, {ref_b.inputs[0].name: x_ref}), (conv_b, {conv_b.inputs[0].name: x_conv}))
            )
    finally:
        for closable in (ref_b, conv_b, ref_det, conv_det):
            closable.close()
    m.value = f1(tp, fp, fn)
    return m


def evaluate_tensors(
    src_path: Path, conv_path: Path, data: CalibrationSet, threads: int
) -> Measured:
    """Any model on tensors: top-1 agreement for N×C outputs, else the lowest cosine."""
    opts = BackendOptions(threads=threads)
    ref_b, conv_b = load_backend(src_path, opts), load_backend(conv_path, opts)
    agree = total = 0
    m = Measured("cosine", 0.0)
    first: dict[str, Array] = {}
    try:
        for i, feeds in enumerate(data.feeds("evaluation")):
            out_r, out_c = ref_b.run(feeds), conv_b.run(feeds)
            check_finite(out_c, conv_b.outputs, data.samples[i].origin)
            first = first or feeds
            c, e = _agreement(out_r, out_c, conv_b.outputs)
            m.add_agreement(c, e)
            r0 = np.asarray(out_r[0])
            if r0.ndim == 2 and r0.shape[1] > 1:
                g0 = _as_float(out_c[0], conv_b.outputs[0]).reshape(r0.shape)
                agree += int(np.sum(r0.argmax(1) == g0.argmax(1)))
                total += r0.shape[0]
            m.rows.append({"input": data.samples[i].origin, "cosine": round(c, 6),
                           "max_abs_err": round(e, 6)})  # fmt: skip
        if first:  # on the first sample, each model alone
            m.ms_fp32, m.ms_converted = steady_latency(((ref_b, first), (conv_b, first)))
    finally:
        ref_b.close()
        conv_b.close()
    if total:
        m.metric, m.value = "top1_agreement", agree / total
    else:
        m.value = m.cosine_min
    return m


def build_report(
    m: Measured, *, profile: str, recipe: dict[str, Any], source: Path, converted: Path,
    eval_set: str, threads: int,
) -> Report:  # fmt: skip
    ms_r = statistics.median(m.ms_fp32) if m.ms_fp32 else float("nan")
    ms_c = statistics.median(m.ms_converted) if m.ms_converted else float("nan")
    size_r, size_c = source.stat().st_size, converted.stat().st_size
    n = max(1, len(m.rows))
    return Report(
        profile=profile, recipe=recipe, source_model=source.name, eval_set=eval_set,
        samples=len(m.rows), task_metric=m.metric, task_value=round(m.value, 4),
        cosine_min=round(m.cosine_min, 6), cosine_mean=round(m.cosine_sum / n, 6),
        max_abs_err=round(m.max_abs_err, 6), latency_fp32_ms=round(ms_r, 3),
        latency_converted_ms=round(ms_c, 3), speedup=round(ms_r / ms_c, 3) if ms_c else 0.0,
        size_fp32=size_r, size_converted=size_c, size_ratio=round(size_c / size_r, 4),
        threads=threads, per_sample=m.rows,
    )  # fmt: skip


def choose_metric(manifest: Manifest, origin: str) -> tuple[bool, str]:
    """(evaluate as an image detector with box F1, the metric-fallback note or "").

    An image model whose task is ``detect`` asks for box F1. Its decoder is validated here,
    so a bad decoder parameter is a one-line ``ManifestError`` naming the field: the bundle
    would not load on the device either, and gating on tensor cosine instead would pass a
    model nobody can run. A detect model whose decoder is not a known image decoder (a
    custom or generic one) cannot be decoded here; it is gated on output agreement, and the
    note says so in the report and on stderr. Other tasks are gated on tensors by design.
    """
    entry = DECODERS.get(manifest.decoder.type)
    wants_boxes = manifest.task == "detect" and manifest.input.kind == "image"
    if not wants_boxes:
        return False, ""
    if entry is None or entry.input_kind != "image":
        return False, (
            f"{origin}: decoder.type {manifest.decoder.type!r} is not a known image decoder "
            f"({', '.join(k for k, e in sorted(DECODERS.items()) if e.input_kind == 'image')}), "
            "so box F1 cannot be measured; gated on output agreement (top-1/cosine) instead"
        )
    decoder_entry(manifest, origin)  # raises ManifestError naming the bad field
    return True, ""
