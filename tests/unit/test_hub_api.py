"""The HTTP API on a SQLite store, in process (no broker): errors, auth, pages, OpenAPI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import open_store
from cloud_sync.schema import EventBatchV1, EventV1, ModelRefV1

BOOT = str(uuid.uuid4())


def batch(device: str, seqs: range) -> EventBatchV1:
    ts = "2026-01-01T00:00:00Z"
    events = [
        EventV1.model_validate({
            "id": str(uuid.uuid4()), "device_id": device, "boot_id": BOOT, "seq": s,
            "stream": "cam0", "kind": "vision", "label": "face", "score": 0.5, "phase": "start",
            "started_at": ts, "ts": ts, "model": ModelRefV1(name="m", version="1", sha256="abcdef"),
            "latency_ms": 1.0})
        for s in seqs
    ]  # fmt: skip
    return EventBatchV1(device_id=device, boot_id=BOOT, events=events)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    store = open_store(f"sqlite:///{tmp_path}/hub.db")
    store.migrate()
    store.write([batch("cam-1", range(0, 3)), batch("cam-2", range(0, 2))])
    return Hub(store, token=None)


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(hub.app) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/api/events?limit=0", "limit"),
        ("/api/events?limit=abc", "limit"),
        ("/api/events?limit=5000", "limit"),
        ("/api/events?cursor=-3", "cursor"),
        ("/api/events?since=yesterday", "since"),
        ("/api/events?until=2026-01-01T00:00:00", "until"),  # no zone
        ("/api/events?since=10&until=5", "until"),
        ("/api/events?kind=video", "kind"),
        ("/api/events?order=sideways", "order"),
        ("/api/events?device=a/b", "device"),
        ("/api/events?colour=red", "colour"),
        ("/api/gaps?device=%23", "device"),
        ("/api/stats/labels?bucket=0", "bucket"),
        ("/api/devices/cam-1/telemetry?since=x", "since"),
        ("/api/stream?kind=x", "kind"),
        ("/api/events?phase=leave", "phase"),
        ("/api/stream?phase=x", "phase"),
    ],
)
def test_bad_query_parameters_are_400_with_a_json_error(
    client: TestClient, path: str, names: str
) -> None:
    r = client.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(names)


def test_events_pages_and_filters(client: TestClient) -> None:
    r = client.get("/api/events", params={"device": "cam-1", "limit": 2})
    body = r.json()
    assert [e["seq"] for e in body["events"]] == [2, 1]
    r2 = client.get("/api/events", params={"device": "cam-1", "cursor": body["next_cursor"]})
    assert [e["seq"] for e in r2.json()["events"]] == [0]
    assert r2.json()["next_cursor"] is None
    since = client.get("/api/events", params={"since": "2026-01-02T00:00:00Z"}).json()
    assert since["events"] == []


def test_events_filter_by_phase(hub: Hub, client: TestClient) -> None:
    """Issue 12: zone enters and line crossings are events of their own phase."""
    b = batch("cam-3", range(2))
    cross = {**b.events[1].model_dump(), "phase": "cross", "line": "gate", "direction": "in"}
    hub.store.write([EventBatchV1(device_id="cam-3", boot_id=BOOT, events=[
        b.events[0], EventV1.model_validate(cross)])])  # fmt: skip
    got = client.get("/api/events", params={"phase": "cross"}).json()["events"]
    assert [(e["device_id"], e["line"], e["direction"]) for e in got] == [("cam-3", "gate", "in")]
    assert len(client.get("/api/events", params={"phase": "start"}).json()["events"]) == 6


def test_devices_gaps_and_missing_device(client: TestClient) -> None:
    devs = client.get("/api/devices").json()["devices"]
    assert [(d["device_id"], d["events"], d["state"]) for d in devs] == [
        ("cam-1", 3, "unknown"),
        ("cam-2", 2, "unknown"),
    ]
    assert client.get("/api/gaps").json() == {"gaps": []}
    assert client.get("/api/devices/nope").status_code == 404


def test_commands_need_a_name_and_a_broker(client: TestClient) -> None:
    assert client.post("/api/devices/cam-1/commands", content=b"{").status_code == 400
    r = client.post("/api/devices/cam-1/commands", json={"name": "Bad/Name"})
    assert r.status_code == 400 and "body.name" in r.json()["error"]
    r = client.post("/api/devices/cam-1/commands", json={"name": "config", "args": []})
    assert r.status_code == 400 and "body.args" in r.json()["error"]
    r = client.post("/api/devices/cam-1/commands", json={"name": "config", "args": {}})
    assert r.status_code == 503  # no MQTT connection in this hub


def test_openapi_health_metrics_dashboard(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/events", "/api/stream", "/api/gaps"} <= set(doc["paths"])
    assert "event-batch.v1" in doc["components"]["schemas"]
    assert "#/$defs/" not in str(doc)
    assert client.get("/healthz").json()["db"] is True
    assert "edge_hub_devices 2" in client.get("/metrics").text
    page = client.get("/")
    assert page.status_code == 200 and "EventSource" not in page.text and "edge-hub" in page.text
    assert "EventSource" in client.get("/static/dashboard.js").text


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({}, "", 401),
        ({"Authorization": "Bearer wrong"}, "", 401),
        ({"Authorization": "Basic s3cret"}, "", 401),
        ({"Authorization": "Bearer s3cret"}, "", 200),
        # a credential in the URL is refused, right or wrong (tests/unit/test_hub_auth.py)
        ({}, "?access_token=wrong", 400),
        ({}, "?access_token=s3cret", 400),
        ({"Authorization": "Bearer s3cret"}, "?token=s3cret", 400),
    ],
)
def test_bearer_token(hub: Hub, headers: dict[str, str], query: str, status: int) -> None:
    secured = Hub(hub.store, token="s3cret")
    with TestClient(secured.app) as c:
        r = c.get("/api/devices" + query, headers=headers)
        assert r.status_code == status
        if status == 401:
            assert "token" in r.json()["error"]
            assert r.headers["www-authenticate"].startswith("Bearer")
        if status == 400:
            assert "Authorization: Bearer" in r.json()["error"]
        assert c.get("/metrics" + query, headers=headers).status_code == status
        assert c.get("/healthz").status_code == 200  # health stays open for load balancers
