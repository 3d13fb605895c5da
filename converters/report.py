"""report.json, a readable report.md, and report.png (drawn with OpenCV, no matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from converters.evaluate import Report
from edge.units import format_size


def _plot(path: Path, r: Report) -> None:
    """Three bar pairs, FP32 vs converted: latency, size, and the per-sample task metric."""
    w, h = 900, 340
    img = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    panels = [
        ("median latency (ms)", r.latency_fp32_ms, r.latency_converted_ms),
        ("size (MiB)", r.size_fp32 / 2**20, r.size_converted / 2**20),
        (r.task_metric, 1.0, r.task_value),
    ]
    for i, (title, a, b) in enumerate(panels):
        x0 = 30 + i * 300
        cv2.putText(img, title, (x0, 30), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        top = max(a, b, 1e-9)
        for j, (val, colour, label) in enumerate(
            ((a, (160, 110, 40), "FP32"), (b, (40, 140, 240), "converted"))
        ):
            bh = int(230 * val / top) if np.isfinite(val) else 0
            x = x0 + 30 + j * 110
            cv2.rectangle(img, (x, 290 - bh), (x + 80, 290), colour, -1)
            cv2.putText(img, f"{val:.3g}", (x, 282 - bh), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(img, label, (x, 312), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def to_markdown(r: Report) -> str:
    gate = r.gate
    lines = [
        f"# Conversion report: {r.source_model} for `{r.profile}`",
        "",
        f"Gate: **{'passed' if gate.get('passed') else 'FAILED'}**"
        + (f" ({'; '.join(gate.get('failures', []))})" if gate.get("failures") else ""),
        "",
        "| | FP32 | converted | ratio |",
        "| --- | --- | --- | --- |",
        f"| median latency ({r.threads} thread{'s' if r.threads > 1 else ''}) | "
        f"{r.latency_fp32_ms:.2f} ms | {r.latency_converted_ms:.2f} ms | {r.speedup:.2f}× faster |",
        f"| size | {format_size(r.size_fp32)} | {format_size(r.size_converted)} "
        f"| {r.size_ratio:.3f}× |",
        "",
        f"- task metric `{r.task_metric}` vs FP32 on {r.samples} samples ({r.eval_set}): "
        f"**{r.task_value:.4f}**",
        f"- output cosine: min {r.cosine_min:.5f}, mean {r.cosine_mean:.5f}; "
        f"max abs error {r.max_abs_err:.4g}",
        f"- recipe: {', '.join(f'{k}={v}' for k, v in r.recipe.items() if v is not None)}",
        f"- conversion wall time: {r.conversion_s:.1f} s",
    ]
    if r.metric_fallback:
        lines.append(f"- **metric fallback**: {r.metric_fallback}")
    if r.excluded_nodes:
        lines.append(f"- kept in float by --auto-fallback: {', '.join(r.excluded_nodes)}")
    if r.float_ops:
        ops = ", ".join(f"{op} {n}" for op, n in sorted(r.float_ops.items()))
        lines.append(f"- nodes left in float (by op type): {ops}")
    fb = r.auto_fallback
    if fb:
        methods = sorted({str(x["ranked_by"]) for x in fb["rounds"] if "ranked_by" in x})
        lines.append(
            f"- --auto-fallback: {len(fb['rounds'])} round(s), ranked by "
            f"{', '.join(methods) or 'nothing (the first round passed)'}, seed {fb['seed']}, "
            f"debugging samples: {', '.join(Path(s).name for s in fb['debug_samples'])}"
        )
        lines += [f"  - note: {n}" for n in fb["notes"]]
    lines += ["", "![FP32 vs converted](report.png)", ""]
    if r.per_sample:
        keys = list(r.per_sample[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in r.per_sample]
    return "\n".join(lines) + "\n"


def write_report(out: Path, r: Report) -> None:
    from dataclasses import asdict

    (out / "report.json").write_text(json.dumps(asdict(r), indent=2) + "\n")
    (out / "report.md").write_text(to_markdown(r))
    _plot(out / "report.png", r)
