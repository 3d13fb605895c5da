"""``GET /api/events/{event_id}/snapshot``: the JPEG, its ETag and cache headers.

A stored snapshot never changes, so its answer is ``immutable`` when it is the one the
request asked for first; a fallback (another kind, another event of the track) may be
superseded when a better picture arrives, so it is cached briefly only. The ETag is a
sha256 prefix of the bytes; ``If-None-Match`` with it answers 304.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cloud_sync.hub.errors import QueryError
from cloud_sync.hub.snapshots import serve

if TYPE_CHECKING:
    from cloud_sync.hub.api import Hub

IMMUTABLE = "private, max-age=31536000, immutable"
FALLBACK = "private, max-age=60"


def _event_id(raw: str) -> str:
    try:
        u = uuid.UUID(raw)
    except ValueError:
        raise QueryError(f"event_id: {raw[:80]!r} is not an event id (a UUID)") from None
    if str(u) != raw:
        raise QueryError(f"event_id: {raw[:80]!r} is not in canonical form; use {u}")
    return raw


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


async def snapshot_response(hub: Hub, req: Request) -> Response:
    event_id = _event_id(req.path_params["event_id"])
    unknown = sorted(set(req.query_params) - {"kind"})
    if unknown:
        raise QueryError(f"{unknown[0]}: unknown parameter; use kind")
    kind = req.query_params.get("kind")
    if kind is not None and kind not in serve.QUERY_KINDS:
        raise QueryError(f"kind: {kind!r} must be one of {', '.join(serve.QUERY_KINDS)}")
    ref = await run_in_threadpool(hub.store.event_ref, event_id)
    if ref is None:
        return JSONResponse({"error": f"no event {event_id}"}, status_code=404)
    rows = await run_in_threadpool(hub.store.snapshots_of, ref)
    row = serve.choose(ref, rows, kind)
    asked = kind or "its own frame"
    if row is None:
        return JSONResponse(
            {"error": f"no snapshot ({asked}) of event {event_id} or its track"},
            status_code=404,
        )
    etag = f'"{row.sha256[:32]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if serve.exact(ref, row, kind) else FALLBACK,
        "X-Snapshot-Event": row.event_id,
        "X-Snapshot-Kind": row.kind,
    }
    if _etag_matches(req.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    jpeg = await run_in_threadpool(hub.snapshots.read, row)
    if jpeg is None:
        return JSONResponse(
            {"error": f"snapshot {row.kind} of event {row.event_id} is damaged or missing"
                      " on the hub (see its log)"},
            status_code=404,
        )  # fmt: skip
    return Response(jpeg, media_type="image/jpeg", headers=headers)
