"""``GET /api/events/{id}/snapshot`` in process on SQLite: the JPEG and its headers,
304, the track fallback, 400 / 404 with clear messages, auth, the counters in
``/metrics`` and ``/healthz``, and the route in ``/openapi.json``."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import Store, open_store
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.snapshots.intake import SnapshotConfig, SnapshotIntake
from cloud_sync.schema import EventBatchV1
from tests.support.prom import value
from tests.support.snapshots import jpeg, message, track

TOKEN = "snapshot-token-0123456789"
DEV = "cam-1"
BOOT = str(uuid.uuid4())
FRAME, CROP, BEST = jpeg("astronaut"), jpeg("camera", 96, 128), jpeg("chelsea")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class World:
    def __init__(self, tmp: Path) -> None:
        self.store: Store = open_store(f"sqlite:///{tmp}/hub.db")
        self.store.migrate()
        self.start, self.end = track(DEV, BOOT, 3)
        self.lone, _ = track(DEV, BOOT, 4, seq0=2)  # a track without pictures
        self.store.write([EventBatchV1(device_id=DEV, boot_id=BOOT,
                                       events=[self.start, self.end, self.lone])])  # fmt: skip
        self.metrics = HubMetrics()
        intake = SnapshotIntake(SnapshotConfig(dir=tmp / "hub.db.snapshots"), self.store,
                                self.metrics)  # fmt: skip
        intake.handle(DEV, message(DEV, self.start.id, "start_crop", CROP, width=96, height=128))
        intake.handle(DEV, message(DEV, self.end.id, "best", BEST))
        intake.handle(DEV, b"garbage")
        assert self.metrics.snapshots_stored == 2


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(Hub(world.store, metrics=world.metrics, token=TOKEN).app) as c:
        yield c


def test_the_snapshot_is_served_with_its_headers_and_304(world: World, client: TestClient) -> None:
    r = client.get(f"/api/events/{world.end.id}/snapshot", headers=AUTH)
    assert r.status_code == 200 and r.content == BEST
    assert r.headers["content-type"] == "image/jpeg"
    etag = r.headers["etag"]
    assert etag == f'"{hashlib.sha256(BEST).hexdigest()[:32]}"'
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert (r.headers["x-snapshot-event"], r.headers["x-snapshot-kind"]) == (world.end.id, "best")
    for inm in (etag, f"W/{etag}", f'"other", {etag}'):
        again = client.get(f"/api/events/{world.end.id}/snapshot",
                           headers={**AUTH, "If-None-Match": inm})  # fmt: skip
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get(f"/api/events/{world.end.id}/snapshot",
                       headers={**AUTH, "If-None-Match": '"nope"'})  # fmt: skip
    assert other.status_code == 200 and other.content == BEST


def test_any_event_of_the_track_gets_its_picture(world: World, client: TestClient) -> None:
    def get(eid: str, kind: str | None = None) -> tuple[int, bytes, str]:
        q = f"?kind={kind}" if kind else ""
        r = client.get(f"/api/events/{eid}/snapshot{q}", headers=AUTH)
        return r.status_code, r.content, r.headers.get("cache-control", "")

    # the start event has no start frame: the track's best, cached briefly only
    assert get(world.start.id) == (200, BEST, "private, max-age=60")
    assert get(world.start.id, "crop")[:2] == (200, CROP)  # best_crop missing: start_crop
    assert get(world.end.id, "crop")[:2] == (200, CROP)
    assert get(world.start.id, "start_crop") == (200, CROP, "private, max-age=31536000, immutable")
    assert get(world.end.id, "frame")[:2] == (200, BEST)
    assert get(world.start.id, "best")[:2] == (200, BEST)
    code, body, _ = get(world.end.id, "start")
    assert code == 404 and b"no snapshot (start)" in body
    code, body, _ = get(world.lone.id)
    assert code == 404 and b"its own frame" in body


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/events/{e}/snapshot?kind=thumb", 400, "kind"),
        ("/api/events/{e}/snapshot?size=big", 400, "size"),
        ("/api/events/not-a-uuid/snapshot", 400, "event_id"),
        ("/api/events/..%2F..%2Fetc%2Fpasswd/snapshot", 404, "Not Found"),  # no route at all
        ("/api/events/%2e%2e/snapshot", 400, "event_id"),
        ("/api/events/..%5C..%5Cwin.ini/snapshot", 400, "event_id"),
        ("/api/events/{E}/snapshot", 400, "canonical"),
        (f"/api/events/{uuid.uuid4()}/snapshot", 404, "no event"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    world: World, client: TestClient, path: str, status: int, says: str
) -> None:
    r = client.get(path.format(e=world.end.id, E=world.end.id.upper()), headers=AUTH)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def test_the_snapshot_needs_the_token_or_the_session(world: World, client: TestClient) -> None:
    url = f"/api/events/{world.end.id}/snapshot"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(f"{url}?token={TOKEN}").status_code == 400
    assert client.post("/api/login", json={"token": TOKEN}).status_code == 200
    r = client.get(url)  # the cookie, as the dashboard's <img> sends it
    assert r.status_code == 200 and r.content == BEST


def test_a_damaged_file_is_a_404_and_counted(
    world: World, client: TestClient, tmp_path: Path
) -> None:
    for f in (tmp_path / "hub.db.snapshots").rglob("*.best.jpg"):
        f.write_bytes(b"\xff\xd8 overwritten \xff\xd9")
    r = client.get(f"/api/events/{world.end.id}/snapshot", headers=AUTH)
    assert r.status_code == 404 and "damaged" in r.json()["error"]
    text = client.get("/metrics", headers=AUTH).text
    assert value(text, "edge_hub_snapshots_damaged_total") == 1


def test_the_counters_are_in_metrics_and_healthz(world: World, client: TestClient) -> None:
    text = client.get("/metrics", headers=AUTH).text
    for name, labels, want in (
        ("edge_hub_snapshots_stored_total", {}, 2),
        ("edge_hub_snapshots_rejected_total", {"reason": "not_snapshot"}, 1),
        ("edge_hub_snapshots_deleted_total", {"reason": "age"}, 0),
        ("edge_hub_snapshots_pending", {}, 0),
        ("edge_hub_snapshots_kept", {}, 2),
        ("edge_hub_snapshots_kept_bytes", {}, len(CROP) + len(BEST)),
    ):
        assert value(text, name, **labels) == want, name
    snaps = client.get("/healthz").json()["snapshots"]
    assert snaps["stored"] == 2 and snaps["rejected"] == {"not_snapshot": 1}


def test_the_events_say_which_snapshots_the_hub_has(world: World, client: TestClient) -> None:
    evs = client.get("/api/events?order=asc", headers=AUTH).json()["events"]
    assert [(e["snapshots"], e["snapshots_stored"]) for e in evs] == [
        (["start", "start_crop"], ["start_crop"]),
        (["best", "best_crop"], ["best"]),
        (["start", "start_crop"], []),
    ]


def test_the_route_is_documented(client: TestClient) -> None:
    doc = client.get("/openapi.json", headers=AUTH).json()
    op = doc["paths"]["/api/events/{event_id}/snapshot"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"event_id", "kind"}
    assert "image/jpeg" in op["responses"]["200"]["content"]
    assert {"304", "400", "401", "404"} <= set(op["responses"])
