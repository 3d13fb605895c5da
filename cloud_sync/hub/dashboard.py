"""Serves the dashboard: one HTML page, its ES modules and style (no build step), and an
icon, so a browser's automatic /favicon.ico request finds one instead of a 404."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="7" fill="#0d1117"/>'
    '<path d="M16 4 28 16 16 28 4 16Z" fill="#58a6ff"/>'
    '<circle cx="16" cy="16" r="4" fill="#0d1117"/></svg>'
)


async def _root(_req: object) -> Response:
    # relative, so that behind a proxy serving the hub under a path (/edgewise/ → /) the
    # browser stays under it; the page finds the API from its own address (core.js ROOT)
    return RedirectResponse("static/dashboard.html")


async def _favicon(_req: object) -> Response:
    """The icon (SVG, which browsers take at /favicon.ico too); cached for a day."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", _root),
        Route("/favicon.svg", _favicon),
        Route("/favicon.ico", _favicon),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
