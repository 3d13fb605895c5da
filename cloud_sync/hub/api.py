"""The HTTP API (Starlette): devices, events, gaps, the SSE feed, commands, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
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

from cloud_sync.hub import spec
from cloud_sync.hub.auth import Auth, LoginRoutes
from cloud_sync.hub.dashboard import dashboard_routes
from cloud_sync.hub.db import EventQuery, Store
from cloud_sync.hub.docs import docs_page
from cloud_sync.hub.errors import HubError, QueryError
from cloud_sync.hub.feed import Feed
from cloud_sync.hub.ingest import Ingest
from cloud_sync.hub.metrics import HubMetrics, new_registry, render
from cloud_sync.hub.openapi import openapi_document
from cloud_sync.hub.params import device_id, event_id
from cloud_sync.hub.snapshots.http import snapshot_response
from cloud_sync.hub.snapshots.storage import SnapshotStore, default_dir
from cloud_sync.schema import CommandV1, topic
from edge.compat import UTC
from edge.supervise import ComponentHealth
from edge.wire import COMMAND_RE, INT64_MAX, loads

KEEPALIVE_S = 15.0
SUPERVISE_S = 1.0
COMMAND_BODY_MAX = 64 * 1024
log = logging.getLogger("edge_hub.api")


async def _bounded_body(req: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes before it is all read."""
    declared = req.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body: more than {limit} bytes")
    body = bytearray()
    async for chunk in req.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body: more than {limit} bytes")
    return bytes(body)


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
        root_path: str = "",
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
        login = LoginRoutes(token, cookie_secure=cookie_secure, root_path=root_path)
        routes = [
            Route("/api/login", login.login, methods=["POST"]),
            Route("/api/logout", login.logout, methods=["POST"]),
            Route("/api/session", self.session),
            Route("/healthz", self.healthz),
            Route("/metrics", self.prom),
            Route("/openapi.json", self.openapi),
            Route("/docs", docs_page),
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
        self.app: ASGIApp = Auth(app, token, root_path)

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
        return spec.HEALTHZ.reply(body, 200 if ok else 503)

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
        return spec.SESSION.reply({"token_required": self.token_required})

    async def devices(self, _req: Request) -> Response:
        return spec.DEVICES.reply({"devices": await run_in_threadpool(self.store.devices)})

    async def device(self, req: Request) -> Response:
        d = await run_in_threadpool(self.store.device, req.path_params["device_id"])
        if d is None:
            return spec.DEVICE.reply({"error": "no such device"}, 404)
        return spec.DEVICE.reply(d)

    async def telemetry(self, req: Request) -> Response:
        dev = device_id(req.path_params["device_id"])
        q = spec.TELEMETRY.query(req.query_params)
        since = time.time() - 3600 if q["since"] is None else q["since"]
        rows = await run_in_threadpool(self.store.telemetry, dev, since, q["limit"])
        return spec.TELEMETRY.reply({"device_id": dev, "telemetry": rows})

    async def events(self, req: Request) -> Response:
        q = EventQuery(**spec.EVENTS.query(req.query_params))
        if q.since is not None and q.until is not None and q.until < q.since:
            raise QueryError("until: is before since")
        page, nxt = await run_in_threadpool(self.store.events, q)
        return spec.EVENTS.reply({"events": page, "next_cursor": nxt})

    async def snapshot(self, req: Request) -> Response:
        """The event's picture (or its track's): ``cloud_sync.hub.snapshots.serve``."""
        return await snapshot_response(self, req)

    async def event(self, req: Request) -> Response:
        e = await run_in_threadpool(self.store.event, event_id(req.path_params["event_id"]))
        if e is None:
            return spec.EVENT.reply({"error": "no such event"}, 404)
        return spec.EVENT.reply(e)

    async def track(self, req: Request) -> Response:
        """The event's track in seq order (start, updates, enter / exit / cross, end)."""
        limit = spec.TRACK.query(req.query_params)["limit"]
        eid = event_id(req.path_params["event_id"])
        events = await run_in_threadpool(self.store.track, eid, limit + 1)
        if events is None:
            return spec.TRACK.reply({"error": "no such event"}, 404)
        return spec.TRACK.reply({"events": events[:limit], "truncated": len(events) > limit})

    async def gaps(self, req: Request) -> Response:
        dev = spec.GAPS.query(req.query_params)["device"]
        return spec.GAPS.reply({"gaps": await run_in_threadpool(self.store.gaps, dev)})

    async def quarantine(self, req: Request) -> Response:
        q = spec.QUARANTINE.query(req.query_params)
        page, nxt = await run_in_threadpool(
            self.store.quarantined, q["device"], q["cursor"], q["limit"]
        )
        total = await run_in_threadpool(self.store.quarantine_count)
        return spec.QUARANTINE.reply({"total": total, "quarantine": page, "next_cursor": nxt})

    async def label_stats(self, req: Request) -> Response:
        q = spec.LABEL_STATS.query(req.query_params)
        since = time.time() - 3600 if q["since"] is None else q["since"]
        rows = await run_in_threadpool(self.store.label_counts, since, q["bucket"], q["device"])
        return spec.LABEL_STATS.reply({"bucket_s": q["bucket"], "counts": rows})

    async def commands(self, req: Request) -> Response:
        dev = device_id(req.path_params["device_id"])
        rows = await run_in_threadpool(self.store.commands, dev)
        return spec.COMMANDS.reply({"commands": rows})

    async def send_command(self, req: Request) -> Response:
        dev = device_id(req.path_params["device_id"])
        raw = await _bounded_body(req, COMMAND_BODY_MAX)
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
        return spec.SEND_COMMAND.reply({"id": cmd.id, "topic": t}, 202)

    async def stream(self, req: Request) -> Response:
        last_raw = req.headers.get("last-event-id") or req.query_params.get("last_event_id")
        last: int | None = None
        if last_raw is not None and last_raw != "":
            try:
                last = int(last_raw)
            except ValueError:
                raise QueryError(
                    f"Last-Event-ID: {last_raw[:40]!r} is not an event number"
                ) from None
            if not 0 <= last <= INT64_MAX:
                raise QueryError(f"Last-Event-ID: {last_raw[:40]} is outside 0..{INT64_MAX}")
        q = spec.STREAM.query(req.query_params)
        asked = {
            "device_id": q["device"],
            **{k: q[k] for k in ("stream", "label", "kind", "phase", "zone")},
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
