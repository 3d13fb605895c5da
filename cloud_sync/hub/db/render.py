"""Stored rows → JSON-ready dicts, refusing what JSON or a reader cannot carry.

A row written before the schema was strict (or by hand) may hold ``Infinity``, a
timestamp in year 0 or 10000, or JSON text that does not parse. Rendering such a
row raises ``UnreadableError``; the readers skip it and count it (``Store.unreadable``)
instead of answering 500 or freezing the live feed on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from edge.compat import UTC
from edge.wire import check_json_value

T = TypeVar("T")


class UnreadableError(ValueError):
    """A stored value that cannot be served (non-finite, out-of-range time, bad JSON)."""


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    try:
        if not math.isfinite(t):
            raise UnreadableError(f"time {t} is not finite")
        dt = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise UnreadableError(f"time {t!r} cannot be rendered ({e})") from None
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def num(x: Any) -> Any:
    """A stored number, checked finite (``None`` passes)."""
    if isinstance(x, float) and not math.isfinite(x):
        raise UnreadableError(f"{x} is not a finite number")
    return x


def doc(text: str | None) -> Any:
    """Stored JSON text (box, telemetry, args, replies) → value; finite, bounded depth."""
    if not text:
        return None
    try:
        return check_json_value(json.loads(text))
    except (ValueError, RecursionError) as e:
        raise UnreadableError(f"stored JSON is unreadable ({str(e)[:80]})") from None


def rows(
    raw: Iterable[Sequence[Any]],
    render: Callable[[Sequence[Any]], T],
    on_skip: Callable[[], None],
) -> list[T]:
    """Render each row; a row that cannot be rendered is skipped and ``on_skip`` called."""
    out: list[T] = []
    for r in raw:
        try:
            out.append(render(r))
        except (UnreadableError, ValueError, TypeError, OverflowError):
            on_skip()
    return out
