"""Events are checked against the wire schema before they enter the outbox.

The hub validates every batch with ``cloud_sync.schema.EventBatchV1`` (strict, bounds
from ``edge.wire``) and refuses a batch holding one bad event; if that event had
been committed and PUBACK'd, the whole batch would be lost. So the outbox validates
a group of events with the same models, in one call (pydantic-core on the JSON the
outbox is about to store: about 13 µs an event; see docs/sync.md), and keeps what fails in its
``dead_letters`` table with the reason instead of publishing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from cloud_sync.schema import EventV1

_EVENTS: TypeAdapter[list[EventV1]] = TypeAdapter(list[EventV1])


@dataclass(frozen=True, slots=True)
class Refused:
    index: int  # position in the group
    reason: str  # short and stable, the counter's key: "score: less_than_equal"
    message: str  # pydantic's words, for the log and the dead-letter row


def check_group(bodies: list[str]) -> list[Refused]:
    """``bodies`` are events' JSON without their opening brace and seq (as the outbox
    stores them before the seq is known); a placeholder seq is validated with them."""
    doc = "[" + ",".join('{"seq":0,' + b for b in bodies) + "]"
    try:
        _EVENTS.validate_json(doc)
    except ValidationError as exc:
        return _refusals(exc, len(bodies))
    return []


def _refusals(exc: ValidationError, n: int) -> list[Refused]:
    seen: dict[int, Refused] = {}
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        if not loc or not isinstance(loc[0], int) or not 0 <= loc[0] < n:
            # not about one event (the document itself): refuse all, nothing is guessed
            return [Refused(i, f"invalid: {err['type']}", err["msg"]) for i in range(n)]
        i = loc[0]
        if i in seen:
            continue
        field = ".".join(str(x) for x in loc[1:]) or "event"
        seen[i] = Refused(i, f"{field}: {err['type']}", f"{field}: {err['msg']}")
    return sorted(seen.values(), key=lambda r: r.index)
