"""The dashboard in headless Chromium (Debian's, driven by Playwright), on a hub with a token:
the login form (a wrong token refused, the right one kept only as an HttpOnly session
cookie: never in a URL, localStorage or document.cookie), devices listed, a new event shown
within 2 s without a reload (the SSE feed on the cookie), a kill -9'd device turning
offline (its LWT), logging out.

EDGEWISE_UPDATE_SCREENSHOT=1 saves docs/dashboard.png from this test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import EventBatchV1, topic

from .hub_support import (
    CHROMIUM,
    HubProc,
    Publisher,
    http,
    launch_chromium,
    make_batch,
    make_telemetry,
    mosquitto,
    wait_for,
)

pytestmark = pytest.mark.slow
TOKEN = "dash-" + uuid.uuid4().hex
REPO = Path(__file__).resolve().parents[2]

DEVICE_SCRIPT = r"""
import sys, time, uuid
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
sys.path.insert(0, sys.argv[4])
from tests.integration.hub_support import make_batch, make_telemetry, status
port, prefix, dev = int(sys.argv[1]), sys.argv[2], sys.argv[3]
boot = str(uuid.uuid4())
c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=dev,
                protocol=mqtt.MQTTv5)
c.will_set(f"{prefix}/{dev}/status", status(dev, "offline"), qos=1, retain=True)
c.connect("127.0.0.1", port, keepalive=60)
c.loop_start()
c.publish(f"{prefix}/{dev}/status", status(dev, "online", boot), qos=1, retain=True)
seq = 0
labels = ["face", "person", "speech"]
while True:
    lab = labels[seq % 3]
    b = make_batch(dev, boot, [seq], label=lab, kind="audio" if lab == "speech" else "vision")
    c.publish(f"{prefix}/{dev}/events", b.model_dump_json(), qos=1)
    fps = 25 + (seq % 7)
    crossed = seq if dev == "front-door" else None  # the one camera with zones and a line
    c.publish(f"{prefix}/{dev}/telemetry",
              make_telemetry(dev, boot, fps, 1.0 + (seq % 5) / 4, crossed=crossed)
              .model_dump_json(), qos=1)
    seq += 1
    time.sleep(0.5)
"""


def test_dashboard_live_feed_and_offline_device(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with mosquitto(tmp_path) as port:
        hub = HubProc(
            f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log",
            env={**os.environ, "EDGE_HUB_TOKEN": TOKEN},
        )  # fmt: skip
        devs = [
            subprocess.Popen(
                [sys.executable, "-c", DEVICE_SCRIPT, str(port), prefix, name, str(REPO)]
            )
            for name in ("front-door", "lobby-cam", "loading-dock")
        ]
        pub = Publisher(port)
        try:
            boot = str(uuid.uuid4())
            for i in range(6):  # some history, and a gap, for the charts and the gaps table
                tel = make_telemetry("yard-mic", boot, 15, 3.5).model_dump_json().encode()
                pub.publish(topic(prefix, "yard-mic", "telemetry"), [tel])
                time.sleep(0.01 * i)
            pub.publish(topic(prefix, "yard-mic", "events"), [
                make_batch("yard-mic", boot, [0, 1, 4], label="speech", kind="audio")
                .model_dump_json().encode()])  # fmt: skip
            # a message the hub cannot store: it shows in the quarantine card, not dropped
            pub.publish(topic(prefix, "yard-mic", "events"), [b'{"v": 1, "events": []}'])
            wait_for(lambda: len(hub.get("/api/devices", token=TOKEN)["devices"]) == 4)
            # an old bookmark with the token in the URL is refused, telling what to do
            status, body = http(hub.url(f"/?token={TOKEN}"))
            assert status == 400 and "log in" in body["error"]
            with sync_api.sync_playwright() as pw:
                browser = launch_chromium(pw)
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                urls: list[str] = []
                page.on("request", lambda r: urls.append(r.url))
                page.goto(hub.url("/"))
                # the hub has a token: the login form, nothing else
                page.wait_for_selector("#login:not([hidden])", timeout=5000)
                assert page.is_hidden("main")
                page.fill("#login-token", "not-the-token")
                page.click("#login button[type=submit]")
                page.wait_for_selector("#login-error:text('wrong token')", timeout=5000)
                assert page.is_hidden("main")
                page.fill("#login-token", TOKEN)
                page.click("#login button[type=submit]")
                page.wait_for_selector("#login", state="hidden", timeout=5000)
                for name in ("front-door", "lobby-cam", "loading-dock", "yard-mic"):
                    page.wait_for_selector(f'#devices tr[data-device="{name}"]', timeout=5000)
                page.wait_for_selector('#devices tr[data-device="front-door"][data-state="online"]')
                # a newly published event shows up without a reload
                marker = make_batch("yard-mic", boot, [5], label="glass-break", kind="audio")
                time.sleep(1.0)
                t0 = time.monotonic()
                pub.publish(
                    topic(prefix, "yard-mic", "events"), [marker.model_dump_json().encode()]
                )
                page.wait_for_selector(f'#feed tr[data-id="{marker.events[0].id}"]', timeout=2000)
                assert time.monotonic() - t0 < 2.0
                # zones (issue 12): an enter event names its zone in the feed; the selected
                # device's (front-door, the first) zone counts and line crossings are shown
                b = make_batch("yard-mic", boot, [6], label="person")
                enter = EventBatchV1.model_validate(
                    {**b.model_dump(), "events": [
                        {**b.events[0].model_dump(), "phase": "enter", "zone": "driveway",
                         "zones": ["driveway"]}]}
                )  # fmt: skip
                pub.publish(topic(prefix, "yard-mic", "events"), [enter.model_dump_json().encode()])
                row = f'#feed tr[data-id="{enter.events[0].id}"] td.zones'
                page.wait_for_selector(row, timeout=3000)
                assert page.text_content(row) == "→ driveway"
                page.wait_for_selector('#zones tr[data-zone="driveway"]', timeout=5000)
                cells = page.locator('#zones tr[data-zone="driveway"] td').all_text_contents()
                assert cells[:2] == ["cam0", "driveway"] and "person 1" in cells[3], cells
                assert int(cells[2]) >= 1
                assert page.locator('#zones tr[data-zone="porch"] td').all_text_contents()[2:] == [
                    "0",
                    "–",
                ]
                gate = page.locator('#lines tr[data-line="gate"] td').all_text_contents()
                assert gate[:2] == ["cam0", "gate"] and int(gate[2]) >= 1 and gate[3] == "1"
                # kill -9 one device: the broker sends its LWT, the dashboard shows offline
                devs[2].send_signal(signal.SIGKILL)
                devs[2].wait()
                page.wait_for_selector(
                    '#devices tr[data-device="loading-dock"][data-state="offline"]', timeout=5000
                )
                assert (
                    page.get_attribute('#devices tr[data-device="lobby-cam"]', "data-state")
                    == "online"
                )
                page.wait_for_selector("#gaps tbody tr", timeout=6000)
                page.wait_for_selector('#quarantine tbody tr[data-device="yard-mic"]', timeout=6000)
                assert page.text_content("#kpi-quarantine") == "1"
                # where the token is not: any URL the page asked for, its storage, its
                # cookies as scripts see them; the session cookie is HttpOnly and Strict
                assert all(TOKEN not in u for u in [*urls, page.url]), urls
                assert any(u.endswith("/api/stream") for u in urls)
                storage = page.evaluate(
                    "JSON.stringify([Object.entries(localStorage),"
                    " Object.entries(sessionStorage), document.cookie])"
                )
                assert TOKEN not in storage and "edge_hub_session" not in storage
                assert json.loads(storage)[0] == []  # nothing in localStorage at all
                (cookie,) = context.cookies()
                assert cookie["name"] == "edge_hub_session" and TOKEN not in cookie["value"]
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                assert cookie["path"] == "/api"
                if os.environ.get("EDGEWISE_UPDATE_SCREENSHOT") == "1":
                    time.sleep(4)  # let the charts fill
                    page.screenshot(path=str(REPO / "docs" / "dashboard.png"))
                # logging out: the cookie is gone, the form is back, the API says 401
                page.click("#logout")
                page.wait_for_selector("#login:not([hidden])", timeout=5000)
                assert context.cookies() == []
                assert page.evaluate("fetch('/api/devices').then(r => r.status)") == 401
                browser.close()
        finally:
            pub.close()
            for p in devs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            hub.stop()
