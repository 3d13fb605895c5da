"""Printing results: one JSON document on stdout for ``--json``, tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from edge.redact import redact_json


def emit_json(doc: Any) -> None:
    """``doc`` as one line of JSON, every string in it redacted (``edge.redact``)."""
    sys.stdout.write(json.dumps(redact_json(doc), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
