"""The OpenAPI 3.1 document of the hub's API, generated from the routes' declarations
(``spec.OPS``: query parameters, body and answer models) and the v1 wire schemas; only
``/metrics`` (Prometheus text) and the snapshot (a JPEG) are described here by hand."""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from cloud_sync.hub import models as m
from cloud_sync.hub.auth import COOKIE, CSRF_HEADER
from cloud_sync.hub.params import UUID_PATTERN
from cloud_sync.hub.snapshots.serve import QUERY_KINDS
from cloud_sync.hub.spec import OPS, Op
from cloud_sync.schema import json_schemas
from edge.wire import DEVICE_ID_PATTERN

REF = "#/components/schemas/{model}"
_PATH_PARAMS = {
    "device_id": {"type": "string", "pattern": f"^{DEVICE_ID_PATTERN}$"},
    "event_id": {"type": "string", "pattern": f"^{UUID_PATTERN}$", "format": "uuid"},
}
_400 = "a bad parameter or body, or ?token= / ?access_token= in the URL (refused everywhere)"
_401 = "missing or wrong bearer token or session cookie (when the hub has one)"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in _PATH_PARAMS.items()
        if "{" + name + "}" in path
    ]


def _operation(op: Op) -> dict[str, Any]:
    responses: dict[str, Any] = {"400": _json(_400, m.ErrorOut)}
    if not op.public:
        responses["401"] = _json(_401, m.ErrorOut)
    responses["503"] = _json("the database is unavailable; retry later", m.ErrorOut)
    for status, (desc, model) in op.responses.items():
        responses[str(status)] = _json(desc, model) if model else {"description": desc}
    responses.update(op.extra)
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}"
        .replace("{", "").replace("}", ""),
        "parameters": _path_params(op.path) + [p.openapi() for p in op.params],
        "responses": dict(sorted(responses.items())),
    }  # fmt: skip
    if op.public:
        out["security"] = []
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    return out


def _snapshot_op() -> dict[str, Any]:
    return {"get": {
        "summary": "the event's snapshot as image/jpeg; any event of a track gets the track's"
                   " picture (default: the event's own frame, else the track's best, start,"
                   " then crops). ETag (sha256 prefix), Cache-Control private immutable for"
                   " the first choice (max-age=60 for a fallback); X-Snapshot-Event and"
                   " X-Snapshot-Kind say which one was served",
        "operationId": "get_api_events_event_id_snapshot",
        "parameters": [
            {"name": "event_id", "in": "path", "required": True,
             "schema": {"type": "string", "format": "uuid"}},
            {"name": "kind", "in": "query", "required": False,
             "description": "start, start_crop, best, best_crop (exact, this event's else its"
                            " track's), crop (best_crop else start_crop) or frame (best / start)",
             "schema": {"type": "string", "enum": list(QUERY_KINDS)}},
        ],
        "responses": {
            "200": {"description": "the JPEG", "content": {"image/jpeg": {
                "schema": {"type": "string", "format": "binary"}}}},
            "304": {"description": "If-None-Match matched the ETag"},
            "400": _json("a bad kind, or an event id that is not a canonical UUID", m.ErrorOut),
            "401": _json(_401, m.ErrorOut),
            "404": _json("no such event, or no snapshot of it or its track", m.ErrorOut),
            "503": _json("the database is unavailable; retry later", m.ErrorOut),
        },
    }}  # fmt: skip


def _metrics_op() -> dict[str, Any]:
    return {"get": {
        "summary": "Prometheus text metrics",
        "operationId": "get_metrics",
        "responses": {
            "200": {"description": "the metrics", "content": {"text/plain": {
                "schema": {"type": "string"}}}},
            "401": _json(_401, m.ErrorOut),
        },
    }}  # fmt: skip


def _schemas() -> dict[str, Any]:
    models: set[type[BaseModel]] = {m.ErrorOut}
    for op in OPS:
        models |= {model for _, model in op.responses.values() if model is not None}
        if op.body is not None:
            models.add(op.body)
    ordered = sorted(models, key=lambda c: c.__name__)
    _, top = models_json_schema([(c, "serialization") for c in ordered], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    raw = json.dumps(json_schemas()).replace('"#/$defs/', '"#/components/schemas/')
    for name, s in json.loads(raw).items():
        schemas.update(s.pop("$defs", {}))
        schemas[name] = s
    return schemas


@functools.cache
def _document() -> str:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    paths["/api/events/{event_id}/snapshot"] = _snapshot_op()
    paths["/metrics"] = _metrics_op()
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "edge-hub", "version": "1",
                 "description": "Devices, events, gaps and a live SSE feed from edgewise"
                                " devices. Every error is JSON: {\"error\": \"...\"}."},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "set by POST /api/login (the dashboard); a request"
                            f" that changes something also sends {CSRF_HEADER}: 1"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }  # fmt: skip
    return json.dumps(doc)


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (built once; callers may change theirs)."""
    doc: dict[str, Any] = json.loads(_document())
    return doc
