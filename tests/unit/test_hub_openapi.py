"""The generated OpenAPI document against the app it describes, the declared query
parameters (parse and document from one declaration), the /docs page, and every error
answer being JSON ``{"error": ...}`` (unknown route, wrong method, 401, 413, 500)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from cloud_sync.hub import spec
from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import open_store
from cloud_sync.hub.errors import QueryError
from cloud_sync.hub.openapi import openapi_document
from cloud_sync.hub.params import Param, parse

NOT_JSON = {"/metrics", "/openapi.json", "/docs", "/", "/favicon.svg", "/favicon.ico"}


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    store = open_store(f"sqlite:///{tmp_path}/hub.db")
    store.migrate()
    return Hub(store, token="s3cret")


def _routes(hub: Hub) -> set[tuple[str, str]]:
    app: Any = hub.app.app  # type: ignore[attr-defined]  # inside the Auth middleware
    out = set()
    for r in app.routes:
        if isinstance(r, Route) and r.path not in NOT_JSON:
            out |= {(m.lower(), r.path) for m in (r.methods or ()) if m != "HEAD"}
    return out


def test_every_json_route_is_documented_with_a_response_schema(hub: Hub) -> None:
    doc = openapi_document()
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert _routes(hub) <= documented
    assert documented - _routes(hub) == {("get", "/metrics")}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, r in op["responses"].items():
                if status in ("304",) or (path, method, status) in {("/metrics", "get", "200")}:
                    continue
                media = r.get("content", {})
                assert media, (method, path, status)
                schema = next(iter(media.values()))["schema"]
                assert schema, (method, path, status)
            path_names = set(re.findall(r"\{(\w+)\}", path))
            assert path_names == {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}


def test_every_ref_resolves_and_the_document_is_served(hub: Hub) -> None:
    doc = openapi_document()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs and refs <= set(doc["components"]["schemas"])
    with TestClient(hub.app) as c:
        assert c.get("/openapi.json").json() == doc  # no token needed to read it


def test_query_parameters_are_documented_from_the_declaration_that_parses_them() -> None:
    doc = openapi_document()
    for op in spec.OPS:
        params = {p["name"]: p for p in doc["paths"][op.path][op.method]["parameters"]}
        for p in op.params:
            assert params[p.name]["schema"] == p.schema()
    limit = {p["name"]: p for p in doc["paths"]["/api/events"]["get"]["parameters"]}["limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}


@pytest.mark.parametrize(
    ("param", "raw", "expected"),
    [
        (Param("n", "int", "", lo=1, hi=5), "3", 3),
        (Param("n", "int", "", lo=1, hi=5), "0", QueryError("n: 0 is outside 1..5")),
        (Param("n", "int", "", lo=1, hi=5), "9" * 400, QueryError("is outside")),
        (Param("n", "int", "", lo=1, hi=5), "1e3", QueryError("is not an integer")),
        (Param("n", "int", "", lo=1, hi=5), "\x00", QueryError("is not an integer")),
        (Param("t", "time", ""), "nan", QueryError("not a finite number")),
        (Param("t", "time", ""), "2026-01-01T00:00:00Z", 1767225600.0),
        (Param("device", "device", ""), "a/b", QueryError("not a device id")),
        (Param("device", "device", ""), "x" * 5000, QueryError("not a device id")),
        (Param("zone", "name", ""), "a_b", "a_b"),
        (Param("zone", "name", ""), "' OR 1=1 --", QueryError("not a zone name")),
        (Param("label", "label", ""), "a\x7fb", QueryError("not a label")),
        (Param("k", "choice", "", choices=("a", "b")), "c", QueryError("must be one of a, b")),
    ],
)
def test_param_parses_and_refuses(param: Param, raw: str, expected: Any) -> None:
    if isinstance(expected, QueryError):
        with pytest.raises(QueryError, match=re.escape(str(expected))) as e:
            param.parse(raw)
        assert len(str(e.value)) < 200  # a hostile value is not echoed whole
    else:
        assert param.parse(raw) == expected
    # what the document says of the parameter agrees with what parse accepts
    pattern = param.schema().get("pattern")
    if pattern and param.kind != "time":
        assert bool(re.fullmatch(pattern.strip("^$"), raw)) == (not isinstance(expected, Exception))


def test_strict_routes_refuse_unknown_parameters_and_defaults_apply() -> None:
    with pytest.raises(QueryError, match="colour: unknown parameter"):
        parse({"colour": "red"}, spec.EVENTS.params, strict=True)
    q = parse({}, spec.EVENTS.params, strict=True)
    assert (q["limit"], q["order"], q["cursor"]) == (100, "desc", None)


def test_the_docs_page_is_self_contained(hub: Hub) -> None:
    with TestClient(hub.app) as c:
        r = c.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)  # nothing from a CDN


class BrokenError(Exception):
    pass


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("get", "/nope", {}, 404),
        ("get", "/api/nope", {}, 404),
        ("get", "/static/nope.js", {}, 404),
        ("delete", "/api/events", {}, 405),
        ("post", "/healthz", {}, 405),
        ("get", "/api/events", {"headers": {}}, 401),
        ("post", "/api/devices/cam/commands", {"content": b"{" * 70_000}, 413),
        ("post", "/api/login", {"content": b"x" * 5000,
                                "headers": {"Content-Type": "application/json"}}, 413),
        ("get", "/api/devices", {}, 500),
    ],
)  # fmt: skip
def test_every_error_is_json(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, method: str, path: str, kw: Any, status: int
) -> None:
    def broken() -> None:
        raise BrokenError("boom")

    monkeypatch.setattr(hub.store, "devices", broken)
    kw.setdefault("headers", {"Authorization": "Bearer s3cret"})
    with TestClient(hub.app, raise_server_exceptions=False) as c:
        r = getattr(c, method)(path, **kw)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    if status == 500:
        assert "boom" not in r.text  # the message stays in the log


def test_a_failing_credentials_check_is_a_json_500(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auth middleware runs outside the app's handlers: its failure is JSON too."""
    from cloud_sync.hub.auth import Sessions

    def broken(self: Sessions, value: str, now: float | None = None) -> bool:
        raise BrokenError("boom")

    monkeypatch.setattr(Sessions, "valid", broken)
    with TestClient(hub.app, raise_server_exceptions=False) as c:
        c.cookies.set("edge_hub_session", "v1.1.x.y", path="/api")
        r = c.get("/api/devices")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert "boom" not in r.text and r.json()["error"].startswith("internal error")


@pytest.mark.parametrize(
    "header", ["x" * 10_000, "9" * 4000, "-1", str(2**63)], ids=["text", "huge", "neg", "big"]
)
def test_a_hostile_last_event_id_is_a_short_400(hub: Hub, header: str) -> None:
    with TestClient(hub.app) as c:
        r = c.get(
            "/api/stream", headers={"Authorization": "Bearer s3cret", "Last-Event-ID": header}
        )
    assert r.status_code == 400 and r.json()["error"].startswith("Last-Event-ID: ")
    assert len(r.json()["error"]) < 200
