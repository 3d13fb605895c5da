"""The profile's accuracy gate, and ``--auto-fallback``: find the nodes whose quantization
hurts most (onnxruntime's ``qdq_loss_debug``) and keep them in float."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx

from converters.calibration import CalibrationSet, Reader
from converters.evaluate import Report
from edge.profiles import Gate

log = logging.getLogger(__name__)


def check(report: Report, gate: Gate) -> list[str]:
    """Each way ``report`` misses ``gate``, as a readable line; empty when it passes."""
    failures = []
    if report.task_value < gate.min_task_metric:
        failures.append(
            f"{report.task_metric} {report.task_value:.4f} < {gate.min_task_metric} required"
        )
    if report.cosine_min < gate.min_cosine:
        failures.append(f"output cosine {report.cosine_min:.5f} < {gate.min_cosine} required")
    if report.size_ratio > gate.max_size_ratio:
        failures.append(f"size ratio {report.size_ratio:.3f} > {gate.max_size_ratio} allowed")
    return failures


def worst_nodes(
    float_model: Path, qdq_model: Path, calib: CalibrationSet, count: int, skip: set[str]
) -> list[str]:
    """Names of the ``count`` float-model nodes whose output tensors lose the most signal
    to quantization (lowest signal-to-quantization-noise ratio), not already in ``skip``."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    sample = CalibrationSet(calib.samples[: min(4, len(calib))], calib.digest, calib.kind)
    with tempfile.TemporaryDirectory(prefix="edgewise-qdq-debug-") as tmp:
        aug_f, aug_q = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        modify_model_output_intermediate_tensors(str(float_model), str(aug_f))
        modify_model_output_intermediate_tensors(str(qdq_model), str(aug_q))
        acts_f = collect_activations(str(aug_f), Reader(sample, "fallback: float"))
        acts_q = collect_activations(str(aug_q), Reader(sample, "fallback: qdq"))
    errors = compute_activation_error(create_activation_matching(acts_q, acts_f))
    producers = {out: n.name for n in onnx.load(str(float_model)).graph.node for out in n.output}
    ranked = sorted(
        (e["qdq_err"], producers[t]) for t, e in errors.items() if t in producers and "qdq_err" in e
    )
    out: list[str] = []
    for _, node in ranked:
        if node not in skip and node not in out:
            out.append(node)
        if len(out) == count:
            break
    log.info("worst-quantized nodes: %s", out)
    return out
