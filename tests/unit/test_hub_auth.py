"""The API's auth rules, in process: URL credentials refused, the login form's cookie
(what it is, what it is not), the CSRF header for cookie requests that change something,
logout, expiry. The real browser flow is tests/integration/test_hub_dashboard.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub
from cloud_sync.hub.auth import COOKIE, CSRF_HEADER, SESSION_TTL_S, Sessions
from cloud_sync.hub.db import Store, open_store

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path}/hub.db")
    s.migrate()
    return s


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(Hub(store, token=TOKEN).app) as c:
        yield c


def login(c: TestClient, token: str = TOKEN) -> str:
    """Log in through the API as the dashboard does; returns the Set-Cookie header."""
    r = c.post("/api/login", json={"token": token})
    assert r.status_code == 200, r.text
    return r.headers["set-cookie"]


@pytest.mark.parametrize("token", [TOKEN, None])
@pytest.mark.parametrize(
    "path",
    [
        f"/api/devices?token={TOKEN}",
        f"/api/stream?access_token={TOKEN}",
        f"/api/events?limit=5&access_token={TOKEN}",
        f"/metrics?token={TOKEN}",
        f"/?token={TOKEN}",
        f"/static/dashboard.html?token={TOKEN}",
        "/healthz?access_token=",
    ],
)
def test_a_credential_in_the_url_is_refused_on_every_path(
    store: Store, path: str, token: str | None
) -> None:
    with TestClient(Hub(store, token=token).app) as c:
        r = c.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400
    msg = r.json()["error"]
    assert msg.startswith("?token=:") or msg.startswith("?access_token=:")
    assert "Authorization: Bearer" in msg and "/api/login" in msg
    assert TOKEN not in msg


def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(client: TestClient) -> None:
    assert client.get("/api/devices").status_code == 401
    assert client.get("/api/session").status_code == 401
    header = login(client)
    attrs = [a.strip().lower() for a in header.split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/api" in attrs
    assert f"max-age={SESSION_TTL_S}" in attrs
    assert "secure" not in attrs  # plain http, no proxy saying https
    value = client.cookies[COOKIE]
    assert TOKEN not in value and TOKEN not in header
    assert Sessions.for_token(TOKEN).valid(value)
    # the cookie alone is enough for every read, the live stream included
    assert client.get("/api/devices").status_code == 200
    assert client.get("/api/session").json() == {"token_required": True}
    assert client.get("/metrics").status_code == 401  # Path=/api: Prometheus uses the bearer


def test_the_live_stream_accepts_the_cookie(store: Store) -> None:
    hub = Hub(store, token=TOKEN)
    with TestClient(hub.app) as c:
        login(c)
        hub.closing.set()  # the stream sends its first lines and ends
        with c.stream("GET", "/api/stream") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert next(r.iter_text()).startswith("retry:")
        c.cookies.clear()
        assert c.get("/api/stream").status_code == 401


@pytest.mark.parametrize(
    ("forced", "headers", "secure"),
    [
        (False, {}, False),
        (False, {"X-Forwarded-Proto": "https"}, True),  # behind a TLS-terminating proxy
        (True, {}, True),  # --cookie-secure
    ],
)
def test_the_cookie_is_secure_over_https(
    store: Store, forced: bool, headers: dict[str, str], secure: bool
) -> None:
    with TestClient(Hub(store, token=TOKEN, cookie_secure=forced).app) as c:
        r = c.post("/api/login", json={"token": TOKEN}, headers=headers)
    attrs = [a.strip().lower() for a in r.headers["set-cookie"].split(";")]
    assert ("secure" in attrs) is secure
    with TestClient(Hub(store, token=TOKEN).app, base_url="https://hub.example") as c:
        r = c.post("/api/login", json={"token": TOKEN})
    assert "secure" in [a.strip().lower() for a in r.headers["set-cookie"].split(";")]


@pytest.mark.parametrize(
    ("send", "status", "needle"),
    [
        ({"json": {"token": "wrong"}}, 401, "wrong token"),
        ({"json": {}}, 400, "body.token"),
        ({"json": {"token": 5}}, 400, "body.token"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400, "body.token"),
        # an HTML form (cross-site or not) cannot log in: JSON only
        ({"data": {"token": TOKEN}}, 415, "JSON"),
        ({"json": {"token": "x" * 5000}}, 413, "bytes"),
    ],
)
def test_login_refusals(
    client: TestClient, send: dict[str, object], status: int, needle: str
) -> None:
    r = client.post("/api/login", **send)  # type: ignore[arg-type]  # httpx's keywords
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert "set-cookie" not in r.headers
    assert client.get("/api/devices").status_code == 401


def test_a_hub_without_a_token_has_nothing_to_log_in_to(store: Store) -> None:
    with TestClient(Hub(store, token=None).app) as c:
        assert c.get("/api/session").json() == {"token_required": False}
        r = c.post("/api/login", json={"token": "anything"})
        assert r.status_code == 400 and "no token" in r.json()["error"]


def test_a_cookie_request_that_changes_something_needs_the_csrf_header(
    client: TestClient,
) -> None:
    login(client)
    path = "/api/devices/cam-1/commands"
    r = client.post(path, json={"name": "config", "args": {}})
    assert r.status_code == 403 and CSRF_HEADER in r.json()["error"]
    r = client.post(path, json={"name": "config", "args": {}}, headers={CSRF_HEADER: "yes"})
    assert r.status_code == 403
    # with the header the request is let in (then 503: this hub has no broker)
    r = client.post(path, json={"name": "config", "args": {}}, headers={CSRF_HEADER: "1"})
    assert r.status_code == 503
    # a bearer request needs no header: a browser never adds a bearer token by itself
    client.cookies.clear()
    r = client.post(
        path, json={"name": "config", "args": {}}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 503


@pytest.mark.parametrize(
    "value",
    [
        "not-a-session",
        TOKEN,  # the token itself is not a session
        Sessions.for_token("another-token").issue(),  # made with another token
        Sessions.for_token(TOKEN).issue(now=0.0),  # expired long ago
    ],
)
def test_a_forged_foreign_or_expired_cookie_is_refused_and_cleared(
    client: TestClient, value: str
) -> None:
    client.cookies.set(COOKIE, value, path="/api")
    r = client.get("/api/devices")
    assert r.status_code == 401 and "log in again" in r.json()["error"]
    assert r.headers["set-cookie"].startswith(f'{COOKIE}=""') or "max-age=0" in (
        r.headers["set-cookie"].lower()
    )


def test_a_tampered_session_is_refused() -> None:
    s = Sessions.for_token(TOKEN)
    good = s.issue()
    v, expires, nonce, mac = good.split(".")
    later = f"{v}.{int(expires) + 10**6}.{nonce}.{mac}"  # a longer life, same MAC
    assert s.valid(good) and not s.valid(later) and not s.valid(good + "x")
    assert not s.valid(good, now=float(expires))


def test_logout_clears_the_cookie_and_needs_the_header(client: TestClient) -> None:
    login(client)
    assert client.post("/api/logout").status_code == 403
    assert client.get("/api/devices").status_code == 200
    r = client.post("/api/logout", headers={CSRF_HEADER: "1"})
    assert r.status_code == 200 and "max-age=0" in r.headers["set-cookie"].lower()
    assert client.get("/api/devices").status_code == 401


def test_a_wrong_bearer_does_not_fall_back_to_the_cookie(client: TestClient) -> None:
    login(client)
    r = client.get("/api/devices", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "wrong bearer token" in r.json()["error"]


def test_openapi_describes_the_login_and_no_url_token(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/api/login", "/api/logout", "/api/session"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["session"]["name"] == COOKIE
    params = {
        q["name"] for item in doc["paths"].values() for op in item.values()
        for q in op.get("parameters", [])
    }  # fmt: skip
    assert not params & {"token", "access_token"}
    assert "session cookie" in doc["paths"]["/api/stream"]["get"]["summary"]
