"""Query parameters, declared once: the handler parses with the declaration and the
OpenAPI document describes the same one (type, bounds, choices, default).

A bad value is a ``QueryError`` naming the parameter (the API answers 400); a
parameter a strict route does not know is a 400 too, not silently ignored (a typo'd
filter would otherwise answer everything).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cloud_sync.hub.db import parse_time
from cloud_sync.hub.errors import QueryError
from edge.wire import DEVICE_ID_PATTERN, INT64_MAX, LABEL_PATTERN, NAME_PATTERN

DEVICE_RE = re.compile(DEVICE_ID_PATTERN)
NAME_RE = re.compile(NAME_PATTERN)
LABEL_RE = re.compile(LABEL_PATTERN)
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_RE = re.compile(UUID_PATTERN)
TIME_DOC = "epoch seconds or RFC 3339 with a zone"

Kind = Literal["int", "time", "device", "name", "label", "choice"]


@dataclass(frozen=True)
class Param:
    """One query parameter: how it parses and how the document describes it."""

    name: str
    kind: Kind
    description: str
    lo: int = 0
    hi: int = INT64_MAX
    default: Any = None
    choices: tuple[str, ...] = field(default=())

    def parse(self, raw: str) -> Any:
        n = self.name
        if self.kind == "int":
            try:
                v = int(raw)
            except ValueError:
                raise QueryError(f"{n}: {raw[:40]!r} is not an integer") from None
            if not self.lo <= v <= self.hi:
                raise QueryError(f"{n}: {raw[:40]} is outside {self.lo}..{self.hi}")
            return v
        if self.kind == "time":
            return parse_time(n, raw)
        if self.kind == "device" and not DEVICE_RE.fullmatch(raw):
            raise QueryError(f"{n}: {raw[:40]!r} is not a device id (letters, digits, _ . -)")
        if self.kind == "name" and not NAME_RE.fullmatch(raw):
            raise QueryError(f"{n}: {raw[:40]!r} is not a {n} name (letters, digits, _ . -)")
        if self.kind == "label" and not LABEL_RE.fullmatch(raw):
            raise QueryError(f"{n}: {raw[:40]!r} is not a label (1-128 printable characters)")
        if self.kind == "choice" and raw not in self.choices:
            raise QueryError(f"{n}: {raw[:40]!r} must be one of {', '.join(self.choices)}")
        return raw

    def schema(self) -> dict[str, Any]:
        """The parameter's JSON Schema, from the same fields ``parse`` checks."""
        s: dict[str, Any]
        if self.kind == "int":
            s = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        elif self.kind == "time":
            # a number or an RFC 3339 string with a zone; both arrive as text
            s = {"type": "string", "pattern": r"^(-?[0-9]+(\.[0-9]+)?|[0-9]{4}-[0-9]{2}-[0-9]{2}"
                 r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$"}  # fmt: skip
        elif self.kind == "choice":
            s = {"type": "string", "enum": list(self.choices)}
        else:
            pattern = {"device": DEVICE_ID_PATTERN, "name": NAME_PATTERN, "label": LABEL_PATTERN}
            s = {"type": "string", "pattern": f"^{pattern[self.kind]}$"}
        if self.default is not None:
            s["default"] = self.default
        return s

    def openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "description": self.description,
            "schema": self.schema(),
        }


def parse(query: Mapping[str, str], params: Sequence[Param], strict: bool) -> dict[str, Any]:
    """Every declared parameter by name: its parsed value, else its default."""
    if strict:
        unknown = sorted(set(query) - {p.name for p in params})
        if unknown:
            names = ", ".join(sorted(p.name for p in params))
            raise QueryError(f"{unknown[0][:40]}: unknown parameter; use {names}")
    out: dict[str, Any] = {}
    for p in params:
        raw = query.get(p.name)
        out[p.name] = p.default if raw is None else p.parse(raw)
    return out


def event_id(raw: str) -> str:
    """A path's event id: a UUID, any case (stored lower-case)."""
    if not UUID_RE.fullmatch(raw):
        raise QueryError(f"event_id: {raw[:40]!r} is not an event id (a UUID)")
    return raw.lower()


def device_id(raw: str) -> str:
    if not DEVICE_RE.fullmatch(raw):
        raise QueryError(f"device_id: {raw[:40]!r} is not a device id (letters, digits, _ . -)")
    return raw
