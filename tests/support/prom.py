"""Read a ``/metrics`` exposition the way Prometheus does: with ``prometheus_client``'s
text parser, so a test fails on anything a scraper would refuse or misread."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
TYPES = {"counter", "gauge", "histogram"}
# what each type's samples are named, after the family's name
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def families(text: str) -> dict[str, Metric]:
    """Every family by name (a counter's without ``_total``); a name twice is an error."""
    out: dict[str, Metric] = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name not in out, f"family {fam.name} exposed twice"
        out[fam.name] = fam
    return out


def check(text: str, prefix: str) -> dict[str, Metric]:
    """The conventions every family keeps: the prefix, a type and HELP, counters that end
    in ``_total``, base units (no ``_ms``), each sample named for its family and type.
    Returns the families, for the test's own checks."""
    fams = families(text)
    assert fams, "no metric families"
    for name, fam in fams.items():
        assert name.startswith(prefix), name
        assert fam.type in TYPES, (name, fam.type)
        assert fam.documentation.strip() and fam.documentation != name.replace("_", " "), name
        assert "_ms" not in name and "_milli" not in name, f"{name}: not in base units"
        for s in fam.samples:
            assert s.name in {name + suffix for suffix in SUFFIXES[fam.type]}, (name, s.name)
            assert "_ms" not in s.name, s.name
            if fam.type == "counter":
                assert s.name.endswith("_total") and s.value >= 0, s
    return fams


def documented() -> set[str]:
    """The names docs/metrics.md lists: the first column of its tables of families
    (rows ``| `name` | type | ...``; the rename table's rows are not these)."""
    rows = re.findall(r"^\| `(\w+)` \| (?:counter|gauge|histogram) \|", DOCS.read_text(), re.M)
    return set(rows)


def exposed_names(fams: dict[str, Metric]) -> set[str]:
    """The names a user queries: a counter's with ``_total``, a histogram's base name."""
    return {n + "_total" if f.type == "counter" else n for n, f in fams.items()}


def value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels``; KeyError if absent."""
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise KeyError(f"{name}{labels} not in the exposition")
