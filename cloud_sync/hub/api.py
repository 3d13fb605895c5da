"""The HTTP API (Starlette): devices, events, gaps, the SSE feed, commands, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.registry import CollectorRegistry
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from cloud_sync.hub.auth import Auth, LoginRoutes
from cloud_sync.hub.dashboard import dashboard_routes
from cloud_sync.hub.db import MAX_PAGE, MAX_TRACK, EventQuery, Store, parse_time
from cloud_sync.hub.errors import HubError, QueryError
from cloud_sync.hub.feed import Feed
from cloud_sync.hub.ingest import Ingest
from cloud_sync.hub.metrics import HubMetrics, new_registry, render
from cloud_sync.hub.openapi import openapi_document
from cloud_sync.hub.snapshots.http import snapshot_response
from cloud_sync.hub.snapshots.storage import SnapshotStore, default_dir
from cloud_sync.schema import PHASES, CommandV1, topic
from edge.supervise import ComponentHealth
from edge.wire import COMMAND_RE, DEVICE_ID_RE, INT64_MAX, LABEL_PATTERN, NAME_RE, loads

LABEL_RE = re.compile(LABEL_PATTERN)
EVENT_ID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
KEEPALIVE_S = 15.0
SUPERVISE_S = 1.0
log = logging.getLogger("edge_hub.api")


def _int(req: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.query_params.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise QueryError(f"{name}: {raw!r} is not an integer") from None
    if not lo <= v <= hi:
        raise QueryError(f"{name}: {v} is outside {lo}..{hi}")
    return v


def _time(req: Request, name: str) -> float | None:
    raw = req.query_params.get(name)
    return None if raw is None else parse_time(name, raw)


def _device(value: str | None, name: str = "device") -> str | None:
    if value is not None and not DEVICE_ID_RE.fullmatch(value):
        raise QueryError(f"{name}: {value!r} is not a device id (letters, digits, _ . -)")
    return value


def _only(req: Request, known: set[str]) -> None:
    """A parameter the handler does not know is a 400, not silently ignored (a typo'd
    filter would otherwise answer everything)."""
    unknown = sorted(set(req.query_params) - known)
    if unknown:
        raise QueryError(f"{unknown[0]}: unknown parameter; use {', '.join(sorted(known))}")


def _name(req: Request, name: str) -> str | None:
    """A stream or zone name (letters, digits, _ . -): anything else cannot match one."""
    v = req.query_params.get(name)
    if v is not None and not NAME_RE.fullmatch(v):
        raise QueryError(f"{name}: {v!r} is not a {name} name (letters, digits, _ . -)")
    return v


def _label(req: Request) -> str | None:
    v = req.query_params.get("label")
    if v is not None and not LABEL_RE.fullmatch(v):
        raise QueryError(f"label: {v[:40]!r} is not a label (1-128 printable characters)")
    return v


def _event_id(req: Request) -> str:
    v = str(req.path_params["event_id"])
    if not EVENT_ID_RE.fullmatch(v):
        raise QueryError(f"event_id: {v[:40]!r} is not an event id (a UUID)")
    return v.lower()


def _choice(req: Request, name: str, choices: tuple[str, ...]) -> str | None:
    v = req.query_params.get(name)
    if v is not None and v not in choices:
        raise QueryError(f"{name}: {v!r} must be one of {', '.join(choices)}")
    return v


def matches(e: dict[str, Any], key: str, value: str) -> bool:
    """The live feed's filter, the same as ``/api/events``'s: ``zone`` is the event's
    zone (enter / exit) or one of the zones it is in."""
    if key == "zone":
        return e.get("zone") == value or value in (e.get("zones") or ())
    return bool(e.get(key) == value)


class Hub:
    """Holds what the handlers share; ``app`` is the ASGI application."""

    def __init__(
        self,
        store: Store,
        ingest: Ingest | None = None,
        metrics: HubMetrics | None = None,
        token: str | None = None,
        prefix: str = "edgewise/v1",
        feed_settle_s: float | None = None,
        on_fatal: Callable[[str], None] | None = None,
        cookie_secure: bool = False,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.store = store
        self.snapshots = snapshots or (
            ingest.snapshots.store if ingest else SnapshotStore(store, default_dir(store.url, None))
        )
        self.on_fatal = on_fatal
        self.fatal: str | None = None
        self.closing = threading.Event()
        """Set when the server is shutting down: live streams end so it can exit."""
        self.ingest = ingest
        self.metrics = metrics or (ingest.metrics if ingest else HubMetrics())
        self.prefix = prefix
        self.token_required = token is not None
        settle = feed_settle_s
        if settle is None:
            settle = 2.0 if store.url.startswith("postgres") else 0.0
        self.feed = Feed(store, settle_s=settle)
        login = LoginRoutes(token, cookie_secure=cookie_secure)
        routes = [
            Route("/api/login", login.login, methods=["POST"]),
            Route("/api/logout", login.logout, methods=["POST"]),
            Route("/api/session", self.session),
            Route("/healthz", self.healthz),
            Route("/metrics", self.prom),
            Route("/openapi.json", self.openapi),
            Route("/api/devices", self.devices),
            Route("/api/devices/{device_id}", self.device),
            Route("/api/devices/{device_id}/telemetry", self.telemetry),
            Route("/api/devices/{device_id}/commands", self.commands, methods=["GET"]),
            Route("/api/devices/{device_id}/commands", self.send_command, methods=["POST"]),
            Route("/api/events", self.events),
            Route("/api/events/{event_id}/snapshot", self.snapshot),
            Route("/api/events/{event_id}", self.event),
            Route("/api/events/{event_id}/track", self.track),
            Route("/api/stream", self.stream),
            Route("/api/gaps", self.gaps),
            Route("/api/quarantine", self.quarantine),
            Route("/api/stats/labels", self.label_stats),
            *dashboard_routes(),
        ]
        app = Starlette(
            routes=routes,
            exception_handlers={
                QueryError: self._bad_query,
                HubError: self._unavailable,
                HTTPException: self._http_error,
                Exception: self._internal,
            },
            lifespan=self._lifespan,
        )
        self.app: ASGIApp = Auth(app, token)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        if self.ingest is not None:
            await run_in_threadpool(self.ingest.start)
        tasks = [asyncio.create_task(self.feed.run()), asyncio.create_task(self._supervise())]
        try:
            yield
        finally:
            self.closing.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.ingest is not None:
                await run_in_threadpool(self.ingest.stop)

    async def _supervise(self) -> None:
        """A thread that failed for good (restarts spent) stops the process: exit non-zero
        so the service manager restarts it, rather than serve on without ingest."""
        while self.fatal is None and self.ingest is not None:
            await asyncio.sleep(SUPERVISE_S)
            for c in self.ingest.health():
                if c.fatal:
                    self.fatal = f"{c.name}: {c.reason}"
                    log.critical("%s; stopping the hub (exit 1)", self.fatal)
                    self.closing.set()
                    if self.on_fatal is not None:
                        self.on_fatal(self.fatal)
                    return

    async def _http_error(self, _req: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def _bad_query(self, _req: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def _unavailable(self, _req: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=503)

    async def _internal(self, req: Request, exc: Exception) -> Response:
        """JSON like every other error; a database that is down is a 503, not a 500."""
        if self.store.is_transient(exc):
            msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            return JSONResponse(
                {"error": f"database unavailable ({type(exc).__name__}: {msg}); retry later"},
                status_code=503,
            )
        log.error("%s %s failed", req.method, req.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    # --- handlers --------------------------------------------------------------------------
    async def healthz(self, _req: Request) -> Response:
        """200 when every component is ok, else 503; ``reasons`` says what is wrong."""
        comps: list[ComponentHealth] = list(self.ingest.health()) if self.ingest else []
        try:
            await run_in_threadpool(self.store.last_n)
            comps.append(ComponentHealth("database_read", True))
        except Exception as e:  # any database failure means unhealthy
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            comps.append(ComponentHealth("database_read", False, f"{type(e).__name__}: {msg}"))
        if self.fatal:
            comps.append(ComponentHealth("hub", False, f"stopping: {self.fatal}", fatal=True))
        ok = all(c.ok for c in comps)
        by_name = {c.name: c for c in comps}
        db_ok = all(by_name[n].ok for n in ("database", "database_read") if n in by_name)
        body = {
            "ok": ok,
            "reasons": [f"{c.name}: {c.reason}" for c in comps if not c.ok],
            "components": {c.name: c.to_json() for c in comps},
            "db": db_ok,
            "mqtt_connected": self.metrics.mqtt_connected,
            "queue_depth": len(self.ingest.queue) if self.ingest else 0,
            "snapshots": self.metrics.snapshot_counts(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def prom(self, _req: Request) -> Response:
        """Prometheus text; collected in a worker thread (the collector reads the store)."""
        text = await run_in_threadpool(render, self._registry)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @functools.cached_property
    def _registry(self) -> CollectorRegistry:
        """This hub's own registry (several hubs may share a process, as in tests)."""
        return new_registry(self.metrics, self._scrape_figures)

    def _scrape_figures(self) -> dict[str, float]:
        """What ``/metrics`` reads at each scrape beside ``HubMetrics`` (see ``EXTRA``)."""
        out: dict[str, float] = {"feed_ring_events": len(self.feed.ring)}
        if self.ingest is not None:
            q = self.ingest.queue
            out |= {
                "queue_depth": len(q),
                "queue_bytes": q.nbytes,
                "queue_high_water": q.high_water_items,
                "queue_blocked_seconds": q.blocked_s,
            }
        devs = self.store.devices()
        n_snaps, snap_bytes = self.store.snapshot_totals()
        out |= {"snapshots_kept": n_snaps, "snapshots_kept_bytes": snap_bytes}
        with self.metrics.lock:
            self.metrics.unreadable = self.store.unreadable.copy()
            self.metrics.snapshots_damaged = self.snapshots.damaged
        out["devices"] = len(devs)
        out["devices_online"] = sum(d["state"] == "online" for d in devs)
        return out

    async def openapi(self, _req: Request) -> Response:
        return JSONResponse(openapi_document())

    async def session(self, _req: Request) -> Response:
        """200 when the request is let in (by its cookie or bearer token, or because the hub
        has no token): what the dashboard asks first; 401 means "show the login form"."""
        return JSONResponse({"token_required": self.token_required})

    async def devices(self, _req: Request) -> Response:
        return JSONResponse({"devices": await run_in_threadpool(self.store.devices)})

    async def device(self, req: Request) -> Response:
        d = await run_in_threadpool(self.store.device, req.path_params["device_id"])
        if d is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        return JSONResponse(d)

    async def telemetry(self, req: Request) -> Response:
        dev = _device(req.path_params["device_id"], "device_id")
        assert dev is not None
        since = _time(req, "since")
        since = time.time() - 3600 if since is None else since
        limit = _int(req, "limit", 2000, 1, 10_000)
        rows = await run_in_threadpool(self.store.telemetry, dev, since, limit)
        return JSONResponse({"device_id": dev, "telemetry": rows})

    async def events(self, req: Request) -> Response:
        _only(req, {"device", "stream", "label", "zone", "kind", "phase", "since", "until",
                    "cursor", "limit", "order"})  # fmt: skip
        q = EventQuery(
            device=_device(req.query_params.get("device")),
            label=_label(req),
            stream=_name(req, "stream"),
            zone=_name(req, "zone"),
            kind=_choice(req, "kind", ("vision", "audio")),
            phase=_choice(req, "phase", PHASES),
            since=_time(req, "since"),
            until=_time(req, "until"),
            cursor=_int(req, "cursor", -1, 0, 2**63 - 1) if "cursor" in req.query_params else None,
            limit=_int(req, "limit", 100, 1, MAX_PAGE),
            order=_choice(req, "order", ("asc", "desc")) or "desc",
        )
        if q.since is not None and q.until is not None and q.until < q.since:
            raise QueryError("until: is before since")
        page, nxt = await run_in_threadpool(self.store.events, q)
        return JSONResponse({"events": page, "next_cursor": nxt})

    async def snapshot(self, req: Request) -> Response:
        """The event's picture (or its track's): ``cloud_sync.hub.snapshots.serve``."""
        return await snapshot_response(self, req)

    async def event(self, req: Request) -> Response:
        e = await run_in_threadpool(self.store.event, _event_id(req))
        if e is None:
            return JSONResponse({"error": "no such event"}, status_code=404)
        return JSONResponse(e)

    async def track(self, req: Request) -> Response:
        """The event's track in seq order (start, updates, enter / exit / cross, end)."""
        limit = _int(req, "limit", MAX_TRACK, 1, MAX_TRACK)
        events = await run_in_threadpool(self.store.track, _event_id(req), limit + 1)
        if events is None:
            return JSONResponse({"error": "no such event"}, status_code=404)
        return JSONResponse({"events": events[:limit], "truncated": len(events) > limit})

    async def gaps(self, req: Request) -> Response:
        dev = _device(req.query_params.get("device"))
        return JSONResponse({"gaps": await run_in_threadpool(self.store.gaps, dev)})

    async def quarantine(self, req: Request) -> Response:
        dev = _device(req.query_params.get("device"))
        cursor = _int(req, "cursor", -1, 0, INT64_MAX) if "cursor" in req.query_params else None
        limit = _int(req, "limit", 50, 1, 200)
        page, nxt = await run_in_threadpool(self.store.quarantined, dev, cursor, limit)
        total = await run_in_threadpool(self.store.quarantine_count)
        return JSONResponse({"total": total, "quarantine": page, "next_cursor": nxt})

    async def label_stats(self, req: Request) -> Response:
        bucket = _int(req, "bucket", 60, 1, 86_400)
        since = _time(req, "since")
        since = time.time() - 3600 if since is None else since
        dev = _device(req.query_params.get("device"))
        rows = await run_in_threadpool(self.store.label_counts, since, bucket, dev)
        return JSONResponse({"bucket_s": bucket, "counts": rows})

    async def commands(self, req: Request) -> Response:
        dev = _device(req.path_params["device_id"], "device_id")
        assert dev is not None
        return JSONResponse({"commands": await run_in_threadpool(self.store.commands, dev)})

    async def send_command(self, req: Request) -> Response:
        dev = _device(req.path_params["device_id"], "device_id")
        assert dev is not None
        raw = await req.body()
        try:
            body = loads(raw)  # bounded depth, no NaN/Infinity, 64-bit integers
        except (ValueError, UnicodeDecodeError) as e:
            raise QueryError(
                f'body: {str(e)[:120]}; send {{"name": "config", "args": {{...}}}}'
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise QueryError('body.name: missing; send {"name": "config", "args": {...}}')
        name = body["name"]
        if not COMMAND_RE.fullmatch(name):
            raise QueryError(f"body.name: {name!r} must match {COMMAND_RE.pattern}")
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise QueryError("body.args: must be a JSON object")
        try:
            cmd = CommandV1(id=uuid.uuid4().hex, args=args)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise QueryError(f"body.{loc}: {first['msg']}"[:300]) from None
        try:
            t = topic(self.prefix, dev, "cmd", name)  # raises for a topic a broker would refuse
        except ValueError as e:
            raise QueryError(f"body.name: {e}") from None
        if self.ingest is None:
            raise HubError("this hub has no MQTT connection; start it with --mqtt-host")
        await run_in_threadpool(self.store.add_command, cmd.id, dev, name, cmd.args)
        await run_in_threadpool(self.ingest.publish_command, t, cmd.model_dump_json().encode())
        return JSONResponse({"id": cmd.id, "topic": t}, status_code=202)

    async def stream(self, req: Request) -> Response:
        last_raw = req.headers.get("last-event-id") or req.query_params.get("last_event_id")
        last: int | None = None
        if last_raw is not None and last_raw != "":
            try:
                last = int(last_raw)
            except ValueError:
                raise QueryError(f"Last-Event-ID: {last_raw!r} is not an event number") from None
            if not 0 <= last <= INT64_MAX:
                raise QueryError(f"Last-Event-ID: {last} is outside 0..{INT64_MAX}")
        _only(req, {"device", "stream", "label", "zone", "kind", "phase", "last_event_id"})
        asked = {
            "device_id": _device(req.query_params.get("device")),
            "stream": _name(req, "stream"),
            "label": _label(req),
            "kind": _choice(req, "kind", ("vision", "audio")),
            "phase": _choice(req, "phase", PHASES),
            "zone": _name(req, "zone"),
        }
        want = {k: v for k, v in asked.items() if v is not None}
        return StreamingResponse(
            self._sse(req, last, want),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(
        self, req: Request, last: int | None, want: dict[str, str]
    ) -> AsyncIterator[str]:
        def ok(e: dict[str, Any]) -> bool:
            return all(matches(e, k, v) for k, v in want.items())

        m = self.metrics
        m.sse_clients += 1
        try:
            yield "retry: 2000\n\n"
            k = self.feed.next_k
            sent: set[int] = set()  # backfilled numbers the ring may repeat
            if last is not None:  # resume: what was stored after the client's last event
                cursor = last
                while not self.closing.is_set():
                    rows, scanned = await run_in_threadpool(self.store.events_after, cursor, 1000)
                    for e in rows:
                        sent.add(e["n"])
                        if ok(e):
                            try:
                                data = json.dumps(e, allow_nan=False)
                            except ValueError:
                                continue
                            m.sse_sent += 1
                            yield f"id: {e['n']}\nevent: event\ndata: {data}\n\n"
                    if scanned == cursor:
                        break
                    cursor = scanned
            idle = time.monotonic()
            # ends on shutdown too: a connected dashboard must not hold the server open
            while not self.closing.is_set() and not await req.is_disconnected():
                entries = self.feed.since_k(k)
                for en in entries:
                    k = en.k + 1
                    if en.n in sent or not ok(en.event):
                        continue
                    m.sse_sent += 1
                    yield f"id: {en.n}\nevent: event\ndata: {en.data}\n\n"
                if entries:
                    if sent and entries[-1].n > max(sent):
                        sent.clear()
                    idle = time.monotonic()
                elif time.monotonic() - idle > KEEPALIVE_S:
                    idle = time.monotonic()
                    yield f": keepalive {datetime.now(UTC).isoformat()}\n\n"
                await self.feed.wait(1.0)
        finally:
            m.sse_clients -= 1
