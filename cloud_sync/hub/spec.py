"""Each JSON route of the hub, declared once: its query parameters (``params``), its
answer's model per status, and its summary. The handler parses and replies through its
``Op``; ``openapi.py`` writes the document from the same list (``OPS``).

Why not FastAPI: the hub is Starlette with its own auth middleware, SSE feed and error
handlers, FastAPI is not a dependency, and the routes' bodies are already pydantic-shaped;
declaring each route here gives the same single source without a migration (docs/hub.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse

from cloud_sync.hub import models as m
from cloud_sync.hub.db import MAX_PAGE, MAX_TRACK
from cloud_sync.hub.params import TIME_DOC, Param, parse
from cloud_sync.schema import PHASES

PHASE_DOC = "start, update, end (a track), enter, exit (a zone) or cross (a line)"
KINDS = ("vision", "audio")
QUARANTINE_MAX = 200


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    responses: Mapping[int, tuple[str, type[BaseModel] | None]]
    """status → (description, body model; None: no JSON body)"""
    params: tuple[Param, ...] = ()
    strict: bool = False
    """unknown query parameters are a 400"""
    public: bool = False
    """reachable without credentials"""
    body: type[BaseModel] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """OpenAPI fields this route adds by hand (a non-JSON answer)"""

    def query(self, query: Mapping[str, str]) -> dict[str, Any]:
        return parse(query, self.params, self.strict)

    def reply(self, body: dict[str, Any], status: int = 200) -> JSONResponse:
        model = self.responses[status][1]
        assert model is not None and issubclass(model, m.Out), (self.path, status)
        return m.reply(model, body, status)


def _dev(desc: str = "only this device") -> Param:
    return Param("device", "device", desc)


def _limit(default: int, hi: int) -> Param:
    return Param("limit", "int", f"1..{hi} (default {default})", lo=1, hi=hi, default=default)


def _cursor() -> Param:
    return Param("cursor", "int", "next_cursor of the previous page")


_FILTERS = (
    _dev(),
    Param("stream", "name", "stream name"),
    Param("label", "label", "label"),
    Param("zone", "name", "zone name: the zone entered / left, or one the object is in"),
    Param("kind", "choice", "vision or audio", choices=KINDS),
    Param("phase", "choice", PHASE_DOC, choices=PHASES),
)
_404 = "no such device or event"

LOGIN = Op("post", "/api/login",
           "the token in the body, never the URL; sets the session cookie (HttpOnly,"
           " SameSite=Strict, Path=/api (under --root-path), Secure over https; 12 h)",
           {200: ("logged in", m.LoginOut), 400: ("no token in the body", m.ErrorOut),
            401: ("wrong token", m.ErrorOut), 413: ("body over 4 KiB", m.ErrorOut),
            415: ("body not application/json", m.ErrorOut)},
           public=True, body=m.LoginIn)  # fmt: skip
LOGOUT = Op("post", "/api/logout", "clears the session cookie; needs the CSRF header",
            {200: ("logged out", m.LogoutOut), 403: ("no CSRF header", m.ErrorOut)},
            public=True)  # fmt: skip
SESSION = Op("get", "/api/session",
             "200 {token_required} when the credentials (or none, on a hub without a"
             " token) are accepted; 401 otherwise", {200: ("let in", m.SessionOut)})  # fmt: skip
HEALTHZ = Op("get", "/healthz",
             "200 when the broker connection, the database and the writer are ok, else 503"
             " with `reasons`; `components` per part (no token)",
             {200: ("healthy", m.HealthOut), 503: ("something is wrong", m.HealthOut)},
             public=True)  # fmt: skip
DEVICES = Op("get", "/api/devices",
             "every device: state (online/offline/stopped), last seen, last telemetry,"
             " event count", {200: ("the devices", m.DevicesOut)})  # fmt: skip
DEVICE = Op(
    "get",
    "/api/devices/{device_id}",
    "one device and its boots",
    {200: ("the device", m.DeviceDetail), 404: ("no such device", m.ErrorOut)},
)
TELEMETRY = Op("get", "/api/devices/{device_id}/telemetry",
               "telemetry history, oldest first (fps, inference ms, CPU, memory, outbox)",
               {200: ("the rows", m.TelemetryOut)},
               (Param("since", "time", f"{TIME_DOC} (default: an hour ago)"),
                _limit(2000, 10_000)))  # fmt: skip
COMMANDS = Op("get", "/api/devices/{device_id}/commands",
              "commands sent to the device and their replies, newest first",
              {200: ("the commands", m.CommandsOut)})  # fmt: skip
SEND_COMMAND = Op("post", "/api/devices/{device_id}/commands",
                  "publish a command (CommandV1) on <prefix>/<device>/cmd/<name>; the reply"
                  " is recorded when it arrives",
                  {202: ("published", m.CommandSent), 403: ("cookie without CSRF header",
                   m.ErrorOut), 413: ("body over 64 KiB", m.ErrorOut),
                   503: ("no broker connection", m.ErrorOut)}, body=m.CommandIn)  # fmt: skip
EVENTS = Op("get", "/api/events", "stored events, newest first, cursor-paginated",
            {200: ("a page", m.EventsPage)},
            (*_FILTERS, Param("since", "time", TIME_DOC), Param("until", "time", TIME_DOC),
             _cursor(), _limit(100, MAX_PAGE),
             Param("order", "choice", "desc (default) or asc", choices=("asc", "desc"),
                   default="desc")), strict=True)  # fmt: skip
EVENT = Op(
    "get",
    "/api/events/{event_id}",
    "one event",
    {200: ("the event", m.EventOut), 404: ("no such event", m.ErrorOut)},
)
TRACK = Op("get", "/api/events/{event_id}/track",
           "the event's track: every event of the same device, boot, stream and track id in"
           " seq order (start, updates, enter / exit / cross, end); `truncated` when there"
           " are more than `limit`",
           {200: ("the track", m.TrackOut), 404: ("no such event", m.ErrorOut)},
           (_limit(MAX_TRACK, MAX_TRACK),))  # fmt: skip
GAPS = Op("get", "/api/gaps",
          "missing seq ranges per device from seq 0; `cause` in_transit or outbox_reset"
          " (lost at the device)", {200: ("the gaps", m.GapsOut)}, (_dev(),))  # fmt: skip
QUARANTINE = Op("get", "/api/quarantine",
                "messages (or events) that could not be stored, newest first: reason,"
                " detail, topic, device_id, payload (first 64 KiB), count",
                {200: ("a page", m.QuarantineOut)},
                (_dev(), _limit(50, QUARANTINE_MAX), _cursor()))  # fmt: skip
LABEL_STATS = Op("get", "/api/stats/labels", "event counts per label per time bucket",
                 {200: ("the counts", m.LabelStatsOut)},
                 (Param("since", "time", f"{TIME_DOC} (default: an hour ago)"),
                  Param("bucket", "int", "seconds, 1..86400 (default 60)", lo=1, hi=86_400,
                        default=60), _dev()))  # fmt: skip
STREAM = Op("get", "/api/stream",
            "Server-Sent Events: `event: event`, `id:` the event's number; send"
            " Last-Event-ID to resume; EventSource authenticates with the session cookie",
            {200: ("the stream", None)},
            (*_FILTERS, Param("last_event_id", "int", "like the Last-Event-ID header")),
            strict=True,
            extra={"200": {"description": "the stream", "content": {"text/event-stream": {
                "schema": {"type": "string"}}}}})  # fmt: skip

OPS: tuple[Op, ...] = (LOGIN, LOGOUT, SESSION, HEALTHZ, DEVICES, DEVICE, TELEMETRY, COMMANDS,
                       SEND_COMMAND, EVENTS, EVENT, TRACK, STREAM, GAPS, QUARANTINE,
                       LABEL_STATS)  # fmt: skip
"""The JSON routes; ``/metrics`` (Prometheus text) and the snapshot (JPEG) are described
by ``openapi.py`` itself."""
