"""Which stored snapshot answers ``GET /api/events/{id}/snapshot?kind=…``.

A dashboard shows any event of a track, and only some of them carry pictures (the
start event has ``start``/``start_crop``, the end event ``best``/``best_crop``). So a
request falls back from the event's own snapshot to one of its track (same device,
boot, stream and track id):

- no ``kind``: the event's own frame (a start event's ``start``, any other's ``best``),
  then the track's ``best``, then its ``start``, then the crops (``best_crop`` first);
- ``frame``: the same, frames only; ``crop``: ``best_crop`` else ``start_crop``;
- an exact kind: that kind of this event, else of its track.
Within a kind the event's own snapshot wins over another event's.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloud_sync.hub.db.snapshots import EventRef, SnapshotRow

QUERY_KINDS: tuple[str, ...] = ("start", "start_crop", "best", "best_crop", "crop", "frame")


def preference(ref: EventRef, kind: str | None) -> list[str]:
    own = "start" if ref.phase == "start" else "best"
    other = "best" if own == "start" else "start"
    if kind is None:
        return [own, other, "best_crop", "start_crop"]
    if kind == "frame":
        return [own, other]
    if kind == "crop":
        return ["best_crop", "start_crop"]
    return [kind]


def choose(ref: EventRef, rows: Sequence[SnapshotRow], kind: str | None) -> SnapshotRow | None:
    """The best match among the event's and its track's snapshots (None: nothing fits)."""
    for k in preference(ref, kind):
        hits = [r for r in rows if r.kind == k]
        if hits:
            # the event's own first, then the latest event of the track
            return min(hits, key=lambda r: (r.event_id != ref.id, -r.created))
    return None


def exact(ref: EventRef, row: SnapshotRow, kind: str | None) -> bool:
    """True when the answer can never change (it is the first choice, of this event):
    then it is cacheable as immutable; a fallback may be superseded by a later upload."""
    return row.event_id == ref.id and row.kind == preference(ref, kind)[0]
