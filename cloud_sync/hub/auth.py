"""Who may use the API: a bearer token, or the dashboard's session cookie; never a URL.

- API clients send ``Authorization: Bearer <token>``.
- The dashboard POSTs the token once, in the body, to ``/api/login``; the answer sets a
  session cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/api``, ``Secure`` over
  https). The cookie is not the token: it is ``v1.<expiry>.<nonce>.<HMAC>``, keyed by a
  key derived from the token, so any worker with the same token accepts it (no session
  table), it expires (12 h), and changing the token ends every session. EventSource
  sends it like any same-origin request.
- A request that authenticates with the cookie and changes something (any method but
  GET/HEAD/OPTIONS) must also carry ``X-Edge-Hub-CSRF: 1``. ``SameSite=Strict`` keeps the
  cookie off cross-site requests; the header covers what SameSite does not (a sibling
  sub-domain is "same site"): a page of another origin cannot add a custom header
  without a CORS preflight, which the hub never grants. Bearer requests need no header
  (a browser never adds a bearer token by itself).
- ``?token=`` and ``?access_token=`` are refused (400) on every path: a credential in a
  URL lands in proxy logs and browser history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.wire import loads

log = logging.getLogger("edge_hub.auth")
COOKIE = "edge_hub_session"
CSRF_HEADER = "X-Edge-Hub-CSRF"
SESSION_TTL_S = 12 * 3600
LOGIN_BODY_MAX = 4096
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
URL_CREDENTIALS = ("token", "access_token")
OPEN_API_PATHS = frozenset({"/api/login", "/api/logout"})
"""Under /api but reachable without credentials (they are how one gets or drops them)."""

_URL_REFUSED = (
    "{name}: credentials in a URL are refused (they land in proxy logs and browser"
    " history); send Authorization: Bearer <token>, or log in on the dashboard"
    " (POST /api/login sets a session cookie)"
)
_CSRF_MSG = (
    f"a request authenticated by the session cookie that changes something needs the"
    f" header {CSRF_HEADER}: 1 (the dashboard sends it); API clients send"
    f" Authorization: Bearer <token>"
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Sessions:
    """Issues and checks session cookie values; stateless (HMAC keyed from the token)."""

    key: bytes
    ttl_s: float = SESSION_TTL_S

    @classmethod
    def for_token(cls, token: str, ttl_s: float = SESSION_TTL_S) -> Sessions:
        key = hmac.new(token.encode(), b"edge-hub session cookie v1", hashlib.sha256).digest()
        return cls(key, ttl_s)

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        body = f"v1.{expires}.{_b64(secrets.token_bytes(12))}"
        return f"{body}.{self._mac(body)}"

    def valid(self, value: str, now: float | None = None) -> bool:
        body, _, mac = value.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
            return False
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return False
        return (time.time() if now is None else now) < int(parts[1])


def _secure(req: Request, force: bool) -> bool:
    """Whether the cookie gets ``Secure``: forced, or the request came over https (here,
    or at a proxy that says so). A forged X-Forwarded-Proto only hardens the forger's
    own cookie, so the header is trusted for this and nothing else."""
    proto = req.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return force or req.url.scheme == "https" or proto == "https"


def _json_error(msg: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status, headers=headers)


def _unauthorized(msg: str, clear_cookie: str | None = None) -> JSONResponse:
    """401; ``clear_cookie``: the session cookie's path, to delete it."""
    resp = _json_error(msg, 401, {"WWW-Authenticate": 'Bearer realm="edge-hub"'})
    if clear_cookie is not None:
        resp.delete_cookie(COOKIE, path=clear_cookie, httponly=True, samesite="strict")
    return resp


def cookie_path(root_path: str) -> str:
    """Where the session cookie is sent: the API, under ``--root-path`` when a proxy
    serves the hub under a path (``/edgewise`` → ``/edgewise/api``)."""
    return f"{root_path}/api"


def _protected(path: str) -> bool:
    return (path.startswith("/api/") and path not in OPEN_API_PATHS) or path == "/metrics"


class Auth:
    """The ASGI middleware: URL credentials refused everywhere; with a token, /api and
    /metrics need the bearer token or a valid session cookie (plus the CSRF header for
    a cookie request that changes something)."""

    def __init__(self, app: ASGIApp, token: str | None, root_path: str = "") -> None:
        self.app = app
        self.token = token
        self.sessions = Sessions.for_token(token) if token else None
        self.cookie_path = cookie_path(root_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                denied = self._check(scope)
            except Exception:  # outside the app's handlers: still JSON, and logged
                log.exception("%s %s: the credentials check failed", scope["method"], scope["path"])
                denied = _json_error("internal error (the credentials check failed)", 500)
            if denied is not None:
                await denied(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Response | None:
        query = scope.get("query_string", b"").decode("latin-1")
        for name, _ in parse_qsl(query, keep_blank_values=True):
            if name in URL_CREDENTIALS:
                return _json_error(_URL_REFUSED.format(name=f"?{name}="), 400)
        if self.token is None or not _protected(scope["path"]):
            return None
        req = Request(scope)
        given = req.headers.get("authorization")
        if given is not None:
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return _unauthorized("Authorization: use the Bearer scheme (Bearer <token>)")
            if not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return _unauthorized("wrong bearer token; send Authorization: Bearer <token>")
            return None
        cookie = req.cookies.get(COOKIE)
        if cookie is None:
            return _unauthorized(
                "missing credentials; send Authorization: Bearer <token>, or log in on the"
                " dashboard (POST /api/login)"
            )
        if self.sessions is None or not self.sessions.valid(cookie):
            return _unauthorized(
                "session expired or not valid (the token may have changed); log in again",
                clear_cookie=self.cookie_path,
            )
        if scope["method"] not in SAFE_METHODS and req.headers.get(CSRF_HEADER) != "1":
            return _json_error(_CSRF_MSG, 403)
        return None


class LoginRoutes:
    """``POST /api/login`` (``{"token": "…"}`` in a JSON body) and ``POST /api/logout``."""

    def __init__(self, token: str | None, cookie_secure: bool = False, root_path: str = "") -> None:
        self.token = token
        self.sessions = Sessions.for_token(token) if token else None
        self.cookie_secure = cookie_secure
        self.cookie_path = cookie_path(root_path)

    async def login(self, req: Request) -> Response:
        # JSON only: a cross-site HTML form cannot send it without a CORS preflight
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _json_error('send the token as JSON: {"token": "…"}', 415)
        raw = await req.body()
        if len(raw) > LOGIN_BODY_MAX:
            return _json_error(f"body: more than {LOGIN_BODY_MAX} bytes", 413)
        try:
            body = loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        given = body.get("token") if isinstance(body, dict) else None
        if not isinstance(given, str) or not given:
            return _json_error('body.token: missing; send {"token": "…"}', 400)
        if self.token is None or self.sessions is None:
            return _json_error(
                "this hub has no token (--token-file, EDGE_HUB_TOKEN): no login", 400
            )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _unauthorized("wrong token")
        resp = JSONResponse({"ok": True, "expires_in_s": int(self.sessions.ttl_s)})
        resp.set_cookie(
            COOKIE,
            self.sessions.issue(),
            max_age=int(self.sessions.ttl_s),
            path=self.cookie_path,
            secure=_secure(req, self.cookie_secure),
            httponly=True,
            samesite="strict",
        )
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def logout(self, req: Request) -> Response:
        if req.headers.get(CSRF_HEADER) != "1":
            return _json_error(f"send the header {CSRF_HEADER}: 1 (the dashboard does)", 403)
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(
            COOKIE,
            path=self.cookie_path,
            secure=_secure(req, self.cookie_secure),
            httponly=True,
            samesite="strict",
        )
        return resp
