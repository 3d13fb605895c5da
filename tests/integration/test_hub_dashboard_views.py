"""The dashboard's history, event and device views in headless Chromium (Debian's, driven
by Playwright), with clicks, on a real ``edge-hub serve`` (SQLite, a private mosquitto):

- history: the filters (device, stream, label, zone, phase, from / to) change the list,
  "older" pages with the cursor, a live event that matches the filter streams in and one
  that does not stays out;
- an event view: the snapshot with the box drawn where the event's normalized box says,
  and the track's timeline (start, update, enter, exit, end);
- a device page: its status, the model / version / provider in use, the frames/s chart
  with video and audio apart and the line broken across the gap between two runs, the
  last time label inside the chart, gaps and quarantine for that device only;
- the favicon; no console error and no failed request anywhere.

The walk's start event names ``start`` / ``start_crop`` snapshots, and both are
published as real snapshot messages (``encode_snapshot``) to the real hub, which stores
and serves them (``GET /api/events/{id}/snapshot``).

EDGEWISE_UPDATE_SCREENSHOT=1 saves docs/dashboard-history.png, docs/dashboard-event.png
and docs/dashboard-device.png from this test.
"""

from __future__ import annotations

import os
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cloud_sync.hub.db import open_store
from cloud_sync.schema import EventBatchV1, EventV1, ModelRefV1, StatusV1, TelemetryV1, topic
from edge.compat import UTC
from tests.support.snapshots import message as snapshot_message

from .hub_support import CHROMIUM, HubProc, Publisher, launch_chromium, mosquitto, wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)
BOOT = str(uuid.uuid4())
BOX = [0.25, 0.2, 0.55, 0.9]
SHOTS = os.environ.get("EDGEWISE_UPDATE_SCREENSHOT") == "1"


def ev(seq: int, t: datetime, **kw: Any) -> EventV1:
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()), "device_id": "door-1", "boot_id": BOOT, "seq": seq,
        "stream": "front", "kind": "vision", "label": "person", "score": 0.8, "phase": "start",
        "started_at": t, "ts": t, "box": BOX, "track_id": 100 + seq,
        "model": ModelRefV1(name="yolo11n", version="8.3.0", sha256="abcdef12"),
        "latency_ms": 20.0,
    }  # fmt: skip
    return EventV1.model_validate({**base, **kw})


def history() -> tuple[list[EventV1], list[EventV1]]:
    """door-1 ten hours ago: 60 people on front (more than a page), one tracked person who
    walks into and out of the driveway, a car on back; then a seq gap."""
    t0 = NOW - timedelta(hours=10)
    crowd = [ev(s, t0 + timedelta(seconds=s)) for s in range(60)]
    t1 = t0 + timedelta(minutes=5)
    walk = [
        ev(60, t1, track_id=7, score=0.7, snapshots=["start", "start_crop"]),
        ev(61, t1 + timedelta(seconds=1), track_id=7, phase="update", score=0.9,
           zones=["driveway"], box=[0.3, 0.25, 0.6, 0.95]),
        ev(62, t1 + timedelta(seconds=2), track_id=7, phase="enter", zone="driveway",
           zones=["driveway"]),
        ev(63, t1 + timedelta(seconds=4), track_id=7, phase="exit", zone="driveway", zones=[]),
        ev(64, t1 + timedelta(seconds=5), track_id=7, phase="end"),
    ]  # fmt: skip
    car = [ev(66, t1 + timedelta(seconds=30), stream="back", label="car", track_id=9)]
    return crowd + car, walk


def telemetry(t: datetime, fps: float) -> TelemetryV1:
    return TelemetryV1.model_validate({
        "device_id": "door-1", "boot_id": BOOT, "ts": t.isoformat(), "uptime_s": 5.0,
        "streams": {"front": {"kind": "video", "fps_in": fps, "fps_processed": fps, "dropped": 0},
                    "mic": {"kind": "audio", "fps_in": 31.25, "fps_processed": 31.25,
                            "dropped": 0}},
        "detectors": {"objects": {"inference_ms": 41.5, "calls": 1234,
                                  "model": {"name": "yolo11n", "version": "8.3.0",
                                            "sha256": "abcdef12"},
                                  "accelerator": {"backend": "onnxruntime", "requested": [],
                                                  "active": "CPUExecutionProvider",
                                                  "fallback": None}}},
        "outbox": {"depth": 3, "oldest_age_s": 0.5, "dropped": 2}, "reconnects": 0,
        "cpu_percent": 40.0, "rss_mb": 180.0})  # fmt: skip


def seed(db: str) -> tuple[list[EventV1], list[EventV1]]:
    rest, walk = history()
    store = open_store(db)
    store.migrate()
    # two runs of the daemon, 20 s telemetry, 15 minutes apart: the chart must not join them
    runs = [NOW - timedelta(minutes=55) + timedelta(seconds=20 * i) for i in range(60)]
    runs += [NOW - timedelta(minutes=20) + timedelta(seconds=20 * i) for i in range(60)]
    store.write(
        [EventBatchV1(device_id="door-1", boot_id=BOOT, events=rest + walk)],
        [StatusV1(device_id="door-1", state="online", boot_id=BOOT, ts=NOW)],
        [telemetry(t, 12.0 + i % 3) for i, t in enumerate(runs)],
    )
    store.close()
    return rest, walk


def _jpeg() -> bytes:
    img = np.full((360, 640, 3), (40, 60, 80), np.uint8)
    cv2.rectangle(img, (160, 72), (352, 324), (200, 200, 200), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


def rows(page: Any) -> list[str]:
    return list(page.locator("#history tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)"))


def apply_filter(page: Any, **values: str) -> None:
    for name in ("stream", "label", "zone"):
        page.fill(f"#f-{name}", values.get(name, ""))
    page.select_option("#f-device", values.get("device", ""))
    page.select_option("#f-phase", values.get("phase", ""))
    page.fill("#f-from", values.get("from", ""))
    page.fill("#f-to", values.get("to", ""))
    page.click("#f-apply")
    # the page says which filter its rows are for
    page.wait_for_function(
        "() => document.querySelector('#history').dataset.loaded"
        " === (location.hash.split('?')[1] || '')",
        timeout=5000,
    )


def local(t: datetime) -> str:
    """A datetime-local value in the browser's zone (the test pins it to UTC)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def test_history_event_and_device_views(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    db = f"sqlite:///{tmp_path}/hub.db"
    rest, walk = seed(db)
    with mosquitto(tmp_path) as port:
        hub = HubProc(db, port, prefix, tmp_path / "hub.log")
        pub = Publisher(port)
        try:
            # a message the hub cannot store: door-1's quarantine shows it
            pub.publish(topic(prefix, "door-1", "events"), [b'{"v": 1, "events": []}'])
            wait_for(lambda: hub.get("/api/quarantine")["total"] == 1)
            # the walk's start snapshots, as a device sends them
            picture = _jpeg()
            for kind in ("start", "start_crop"):
                pub.publish(topic(prefix, "door-1", "snapshots"), [snapshot_message(
                    "door-1", walk[0].id, kind, picture, stream="front", width=640,
                    height=360, box=BOX)])  # fmt: skip
            wait_for(lambda: hub.get(f"/api/events/{walk[0].id}")["snapshots_stored"]
                     == ["start", "start_crop"])  # fmt: skip
            with sync_api.sync_playwright() as pw:
                browser = launch_chromium(pw)
                context = browser.new_context(
                    viewport={"width": 1440, "height": 1000}, timezone_id="UTC"
                )
                page = context.new_page()
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m: (
                        m.type == "error"
                        and problems.append(f"console {m.text} {m.location.get('url')}")
                    ),
                )
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on(
                    "response",
                    lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"),
                )
                page.on(  # a live feed the page closed (a new filter) is aborted: fine
                    "requestfailed",
                    lambda r: (("/api/stream" in r.url and r.failure == "net::ERR_ABORTED")
                               or problems.append(f"failed {r.url} {r.failure}")),
                )  # fmt: skip
                asked: list[str] = []
                page.on("request", lambda r: "/snapshot" in r.url and asked.append(r.url))
                page.goto(hub.url("/"))
                # the favicon: the page's icon link, served as an image, and /favicon.ico
                # too (asked for from outside the page: Chromium fails a fetch of
                # /favicon.ico while Playwright routes requests)
                icon = page.evaluate(
                    "fetch(document.querySelector('link[rel=icon]').href)"
                    ".then(r => [r.status, r.headers.get('content-type')])"
                )
                assert icon == [200, "image/svg+xml"], icon
                with urllib.request.urlopen(hub.url("/favicon.ico"), timeout=5) as r:
                    assert r.status == 200 and r.headers["Content-Type"] == "image/svg+xml"
                    assert r.read().startswith(b"<svg")
                # the Devices table: video frames and audio chunks apart, never summed
                page.wait_for_selector('#devices tr[data-device="door-1"]')
                assert page.text_content('#devices tr[data-device="door-1"] .fps-audio') == "31.3"
                assert page.text_content('#devices tr[data-device="door-1"] .fps-video') in {
                    "12.0", "13.0", "14.0"}  # fmt: skip

                # --- history: newest first, a page of 50, then older ---------------------
                page.click("#nav-history")
                page.wait_for_selector("#history tbody tr")
                everything = [e.id for e in reversed(rest + walk)]  # as stored
                assert rows(page) == everything[:50]
                page.click("#history-older")
                page.wait_for_function("n => document.querySelectorAll('#history tbody tr')"
                                       ".length > n", arg=50)  # fmt: skip
                assert rows(page) == everything
                assert page.is_hidden("#history-older")
                # the filters change the list
                apply_filter(page, zone="driveway")
                assert rows(page) == [walk[3].id, walk[2].id, walk[1].id]
                apply_filter(page, zone="driveway", phase="enter")
                assert rows(page) == [walk[2].id]
                apply_filter(page, stream="back")
                assert rows(page) == [rest[-1].id]
                apply_filter(page, label="car", device="door-1")
                assert rows(page) == [rest[-1].id]
                apply_filter(page, label="nobody")
                assert rows(page) == [] and page.is_visible("#history-empty")
                start = walk[0].ts - timedelta(seconds=30)
                end = walk[-1].ts + timedelta(minutes=2)  # datetime-local has minutes only
                apply_filter(page, **{"from": local(start), "to": local(end)})
                assert rows(page) == [e.id for e in reversed(walk)] + [rest[-1].id]
                assert "since=" in page.evaluate("location.hash")
                # a thumbnail for the one event that has snapshots, none asked for the rest
                page.wait_for_selector(
                    f'#history tr[data-id="{walk[0].id}"] img.thumb[data-loaded]'
                )
                assert all(walk[0].id in u and "kind=crop" in u for u in asked), asked
                if SHOTS:
                    page.screenshot(path=str(REPO / "docs" / "dashboard-history.png"))
                # live: an event that matches the filter streams in, one that does not stays out
                apply_filter(page, label="dog")
                live_dog = ev(70, datetime.now(UTC), label="dog", track_id=70)
                live_cat = ev(71, datetime.now(UTC), label="cat", track_id=71)
                for e in (live_cat, live_dog):
                    pub.publish(topic(prefix, "door-1", "events"), [
                        EventBatchV1(device_id="door-1", boot_id=BOOT, events=[e])
                        .model_dump_json().encode()])  # fmt: skip
                page.wait_for_selector(f'#history tr[data-id="{live_dog.id}"]', timeout=5000)
                page.wait_for_selector(f'#feed tr[data-id="{live_cat.id}"]', state="attached")
                assert rows(page) == [live_dog.id]
                apply_filter(page, zone="driveway")

                # --- an event: its picture with the box, its track's timeline -----------------
                page.click(f'#history tr[data-id="{walk[2].id}"]')
                page.wait_for_selector("#view-event .timeline li")
                phases = page.locator("#timeline li").evaluate_all(
                    "ls => ls.map(l => l.dataset.phase)"
                )
                assert phases == ["start", "update", "enter", "exit", "end"]
                assert page.get_attribute("#timeline li.current", "data-id") == walk[2].id
                # the enter event has no picture of its own: the track's start frame, and
                # the start event's box drawn on it where the normalized box says
                page.wait_for_selector("#view-event img.frame[data-loaded]")
                assert page.get_attribute("#view-event .picture", "data-kind") == "start"
                img = page.locator("#view-event img.frame").bounding_box()
                box = page.locator("#view-event .bbox").bounding_box()
                assert img is not None and box is not None
                want = [
                    img["x"] + BOX[0] * img["width"],
                    img["y"] + BOX[1] * img["height"],
                    (BOX[2] - BOX[0]) * img["width"],
                    (BOX[3] - BOX[1]) * img["height"],
                ]
                got = [box["x"], box["y"], box["width"], box["height"]]
                assert all(abs(a - b) < 2.5 for a, b in zip(got, want, strict=True)), (got, want)
                assert page.text_content('[data-field="regions"]') == "→ driveway"
                if SHOTS:
                    page.screenshot(path=str(REPO / "docs" / "dashboard-event.png"))
                # a timeline entry opens that event
                page.click(f'#timeline li[data-id="{walk[4].id}"]')
                page.wait_for_selector(f'#timeline li.current[data-id="{walk[4].id}"]')
                assert problems == [], problems
                # an unknown event says so (its 404s are the only errors, and expected)
                unknown = str(uuid.uuid4())
                page.goto(hub.url(f"/static/dashboard.html#/event/{unknown}"))
                page.wait_for_selector("#event-error:text('No such event.')")
                assert problems and all(unknown in p and "404" in p for p in problems), problems
                problems.clear()

                # --- the device page --------------------------------------------------------
                page.goto(hub.url("/static/dashboard.html#/"))
                page.click('#devices a.devlink:text("door-1")')
                page.wait_for_selector('#dev-state[data-state="online"]')
                cells = page.locator(
                    '#dev-models tr[data-detector="objects"] td'
                ).all_text_contents()
                assert cells[:5] == [
                    "objects",
                    "yolo11n",
                    "8.3.0",
                    "CPUExecutionProvider (onnxruntime)",
                    "config",
                ], cells
                assert cells[6] == "1234"
                page.wait_for_selector("#dev-chart-video path[data-series]")
                # two runs 25 minutes apart: two pieces of line, not one across the gap
                assert page.get_attribute("#dev-chart-video path", "data-runs") == "2"
                assert page.get_attribute("#dev-chart-audio path", "data-runs") == "2"
                assert page.get_attribute("#dev-chart-video path", "data-series") == "front"
                assert page.get_attribute("#dev-chart-audio path", "data-series") == "mic"
                assert page.locator("#dev-chart-inf path").count() == 1
                assert page.locator("#dev-chart-outbox path").count() == 2
                d = page.get_attribute("#dev-chart-video path", "d") or ""
                assert d.count("M") == 2
                # every time label lies inside its chart (the last one used to be cut off)
                clipped = page.evaluate(
                    "[...document.querySelectorAll('#view-device svg')].flatMap(s => {"
                    " const w = s.viewBox.baseVal.width;"
                    " return [...s.querySelectorAll('text.axis-x')].map(t => t.getBBox())"
                    "  .filter(b => b.x < 0 || b.x + b.width > w + 0.5); }).length"
                )
                assert clipped == 0
                page.wait_for_selector('#dev-quarantine tbody tr[data-device="door-1"]')
                page.wait_for_selector('#dev-gaps tbody tr[data-device="door-1"]')
                gap = page.locator("#dev-gaps tbody tr td").all_text_contents()
                assert gap[1:4] == ["65", "65", "1"], gap
                assert problems == [], problems
                if SHOTS:
                    page.screenshot(
                        path=str(REPO / "docs" / "dashboard-device.png"), full_page=True
                    )
                # a device that never reported
                page.goto(hub.url("/static/dashboard.html#/device/nobody"))
                page.wait_for_selector("#dev-missing:not([hidden])")
                assert problems and all("/api/devices/nobody" in p for p in problems), problems
                browser.close()
        finally:
            pub.close()
            hub.stop()
