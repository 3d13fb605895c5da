"""The profile's accuracy gate (``--auto-fallback``'s ranking is ``converters.fallback``)."""

from __future__ import annotations

from converters.evaluate import Report
from edge.profiles import Gate


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
