"""Serves the dashboard: one HTML page with its script and style, no build step."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


async def _root(_req: object) -> Response:
    return RedirectResponse("/static/dashboard.html")


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", _root),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
