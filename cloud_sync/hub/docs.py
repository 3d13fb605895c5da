"""``GET /docs``: the API's interactive reference, rendered in the browser from
``/openapi.json`` by one small page (``static/docs.html``, no CDN, no bundle: the hub
runs offline). Each operation lists its parameters and answers with their schemas; a
GET can be tried with the bearer token typed into the page (kept in the page only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from cloud_sync.hub.dashboard import STATIC


async def docs_page(_req: Request) -> Response:
    return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8")
