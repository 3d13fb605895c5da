"""The OpenAPI 3.1 description of the hub's API, written by hand; payloads use the v1 schemas."""

from __future__ import annotations

import json
from typing import Any

from cloud_sync.hub.auth import COOKIE, CSRF_HEADER
from cloud_sync.schema import json_schemas


def _q(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc,
            "schema": {"type": typ}}  # fmt: skip


_DEVICE = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}
_EVENT = {"name": "event_id", "in": "path", "required": True,
          "schema": {"type": "string", "format": "uuid"}}  # fmt: skip
_ERR = {"description": "bad parameter", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}  # fmt: skip
_401 = {"description": "missing or wrong bearer token or session cookie (when the hub has one)"}
_400_URL = "?token= or ?access_token= in the URL (refused on every path), or a bad parameter"
_403 = {"description": f"session cookie without the {CSRF_HEADER}: 1 header"}
_TIME = "epoch seconds or RFC 3339 with a zone"
_PHASE = "start, update, end (a track), enter, exit (a zone) or cross (a line)"


def _get(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    ok = {"200": {"description": "OK"}, "400": {**_ERR, "description": _400_URL}, "401": _401}
    return {"get": {"summary": summary, "parameters": params or [], "responses": ok}}


def _snapshot_op() -> dict[str, Any]:
    kinds = ["start", "start_crop", "best", "best_crop", "crop", "frame"]
    return {"get": {
        "summary": "the event's snapshot as image/jpeg; any event of a track gets the track's"
                   " picture (default: the event's own frame, else the track's best, start,"
                   " then crops). ETag (sha256 prefix), Cache-Control private immutable for"
                   " the first choice (max-age=60 for a fallback); X-Snapshot-Event and"
                   " X-Snapshot-Kind say which one was served",
        "parameters": [
            {"name": "event_id", "in": "path", "required": True,
             "schema": {"type": "string", "format": "uuid"}},
            {**_q("kind", "start, start_crop, best, best_crop (exact, this event's else its"
                  " track's), crop (best_crop else start_crop) or frame (best / start)"),
             "schema": {"type": "string", "enum": kinds}},
        ],
        "responses": {
            "200": {"description": "the JPEG", "content": {"image/jpeg": {
                "schema": {"type": "string", "format": "binary"}}}},
            "304": {"description": "If-None-Match matched the ETag"},
            "400": {**_ERR, "description": "a bad kind, or an event id that is not a UUID"},
            "401": _401,
            "404": {**_ERR, "description": "no such event, or no snapshot of it or its track"},
        },
    }}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}},
                  "required": ["error"]},
    }  # fmt: skip
    raw = json.dumps(json_schemas()).replace('"#/$defs/', '"#/components/schemas/')
    for name, s in json.loads(raw).items():
        defs = s.pop("$defs", {})
        schemas.update(defs)
        schemas[name] = s
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "edge-hub", "version": "1",
                 "description": "Devices, events, gaps and a live SSE feed from edgewise devices."},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "set by POST /api/login (the dashboard); a request"
                            f" that changes something also sends {CSRF_HEADER}: 1"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/login": {"post": {
                "summary": "the token in the body, never the URL; sets the session cookie"
                           f" {COOKIE} (HttpOnly, SameSite=Strict, Path=/api, Secure over"
                           " https; 12 h)",
                "security": [],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["token"], "properties": {
                        "token": {"type": "string"}}}}}},
                "responses": {"200": {"description": "logged in; body {ok, expires_in_s}"},
                              "400": _ERR, "401": {"description": "wrong token"},
                              "415": {"description": "body not application/json"}}}},
            "/api/logout": {"post": {
                "summary": f"clears the session cookie; needs the header {CSRF_HEADER}: 1",
                "security": [],
                "responses": {"200": {"description": "logged out"}, "403": _403}}},
            "/api/session": _get("200 {token_required} when the credentials (or none, on a hub"
                                 " without a token) are accepted; 401 otherwise"),
            "/healthz": _get("200 when the broker connection, the database and the writer are"
                             " ok, else 503 with `reasons`; `components` per part (no token)"),
            "/metrics": _get("Prometheus text metrics"),
            "/api/devices": _get("every device: state (online/offline/stopped), last seen, "
                                 "last telemetry, event count"),
            "/api/devices/{device_id}": _get("one device and its boots", [_DEVICE]),
            "/api/devices/{device_id}/telemetry": _get(
                "telemetry history (fps, inference ms, CPU, memory, outbox)",
                [_DEVICE, _q("since", _TIME), _q("limit", "1..10000", "integer")]),
            "/api/devices/{device_id}/commands": {
                **_get("commands sent to the device and their replies", [_DEVICE]),
                "post": {
                    "summary": "publish a command (CommandV1) on <prefix>/<device>/cmd/<name>;"
                               " the reply is recorded when it arrives",
                    "parameters": [_DEVICE],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"},
                            "args": {"type": "object"}}}}}},
                    "responses": {"202": {"description": "published; body: {id, topic}"},
                                  "400": _ERR, "401": _401, "403": _403,
                                  "503": {"description": "broker not connected"}},
                },
            },
            "/api/events": _get("stored events, newest first, cursor-paginated", [
                _q("device", "device id"), _q("stream", "stream name"), _q("label", "label"),
                _q("zone", "zone name: the zone entered / left, or one the object is in"),
                _q("kind", "vision or audio"),
                _q("phase", _PHASE), _q("since", _TIME), _q("until", _TIME),
                _q("cursor", "next_cursor of the previous page", "integer"),
                _q("limit", "1..1000", "integer"), _q("order", "desc (default) or asc")]),
            "/api/events/{event_id}/snapshot": _snapshot_op(),
            "/api/events/{event_id}": {"get": {
                "summary": "one event", "parameters": [_EVENT],
                "responses": {"200": {"description": "the event"}, "400": _ERR, "401": _401,
                              "404": {"description": "no such event"}}}},
            "/api/events/{event_id}/track": {"get": {
                "summary": "the event's track: every event of the same device, boot, stream and"
                           " track id in seq order (start, updates, enter / exit / cross, end);"
                           " `truncated` when there are more than `limit`",
                "parameters": [_EVENT, _q("limit", "1..500 (default 500)", "integer")],
                "responses": {"200": {"description": "{events, truncated}"}, "400": _ERR,
                              "401": _401, "404": {"description": "no such event"}}}},
            "/api/stream": _get(
                "Server-Sent Events: `event: event`, `id:` the event's number; send"
                " Last-Event-ID to resume; EventSource authenticates with the session cookie",
                [_q("device", "device id"), _q("stream", "stream name"), _q("label", "label"),
                 _q("zone", "zone name"), _q("kind", "vision or audio"), _q("phase", _PHASE)]),
            "/api/gaps": _get("missing seq ranges per device from seq 0; `cause` in_transit or"
                              " outbox_reset (lost at the device)", [_q("device", "device id")]),
            "/api/quarantine": _get(
                "messages (or events) that could not be stored, newest first: reason, detail,"
                " topic, device_id, payload (first 64 KiB), count", [
                    _q("device", "device id"), _q("limit", "1..200", "integer"),
                    _q("cursor", "next_cursor of the previous page", "integer")]),
            "/api/stats/labels": _get("event counts per label per time bucket", [
                _q("since", _TIME), _q("bucket", "seconds, 1..86400", "integer"),
                _q("device", "device id")]),
        },
    }  # fmt: skip
    return doc
