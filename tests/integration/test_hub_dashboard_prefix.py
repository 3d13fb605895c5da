"""The dashboard and the API docs behind a reverse proxy that serves the hub under a path
(``/edgewise/`` → ``/``, the prefix stripped, as nginx's ``proxy_pass http://hub/;``), with
``--root-path /edgewise``, in headless Chromium (Debian's, driven by Playwright): log in,
see the device, a new event arrives through the live feed, its snapshot shows, log out;
every request the page made stayed under the prefix (the proxy answers 404 elsewhere and
records it).

Ground truth: one device, ``porch-cam``, with one event published before the page opens
and one (with its ``start`` snapshot, scikit-image's astronaut) while it is open.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from tests.support.prefix_proxy import PrefixProxy
from tests.support.snapshots import batch, jpeg, message, track

from .hub_support import (
    CHROMIUM,
    HubProc,
    Publisher,
    launch_chromium,
    make_batch,
    mosquitto,
    wait_for,
)

pytestmark = pytest.mark.slow
TOKEN = "prefix-" + uuid.uuid4().hex
DEV = "porch-cam"


def test_the_dashboard_works_under_a_path_prefix(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    boot = str(uuid.uuid4())
    with mosquitto(tmp_path) as port:
        hub = HubProc(
            f"sqlite:///{tmp_path}/hub.db", port, prefix, tmp_path / "hub.log",
            "--root-path", "/edgewise/", env={**os.environ, "EDGE_HUB_TOKEN": TOKEN},
        )  # fmt: skip
        proxy = PrefixProxy(hub.port, "/edgewise")
        pub = Publisher(port)
        try:
            first = make_batch(DEV, boot, [0], label="person")
            pub.publish(topic(prefix, DEV, "events"), [first.model_dump_json().encode()])
            wait_for(lambda: hub.get("/api/devices", token=TOKEN)["devices"], timeout=10)
            with sync_api.sync_playwright() as pw:
                browser = launch_chromium(pw)
                context = browser.new_context()
                page = context.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.goto(proxy.url("/edgewise/"))  # the hub's / redirects, relatively
                assert page.url == proxy.url("/edgewise/static/dashboard.html"), page.url
                page.wait_for_selector("#login:not([hidden])", timeout=5000)
                page.fill("#login-token", TOKEN)
                page.click("#login button[type=submit]")
                page.wait_for_selector("#login", state="hidden", timeout=5000)
                (cookie,) = context.cookies()
                assert cookie["path"] == "/edgewise/api"  # sent to the API, under the prefix
                page.wait_for_selector(f'#devices tr[data-device="{DEV}"]', timeout=5000)
                page.wait_for_selector(f'#feed tr[data-id="{first.events[0].id}"]', timeout=5000)
                # live: an event and its snapshot, through the proxy's SSE relay
                start, end = track(DEV, boot, 3, seq0=1)
                pub.publish(topic(prefix, DEV, "events"), [batch(start, end)])
                pic = jpeg("astronaut")
                pub.publish(topic(prefix, DEV, "snapshots"), [message(DEV, start.id, "start", pic)])
                page.wait_for_selector(f'#feed tr[data-id="{start.id}"]', timeout=5000)
                page.goto(proxy.url(f"/edgewise/static/dashboard.html#/event/{start.id}"))
                page.wait_for_selector("img[data-loaded='1']", timeout=10_000)
                # the API docs page, under the prefix too, tries a call there
                page.goto(proxy.url("/edgewise/docs"))
                page.wait_for_function(
                    "document.querySelectorAll('#ops > details').length > 5", timeout=10_000
                )
                page.goto(proxy.url("/edgewise/static/dashboard.html"))
                page.wait_for_selector(f'#devices tr[data-device="{DEV}"]', timeout=5000)
                page.click("#logout")
                page.wait_for_selector("#login:not([hidden])", timeout=5000)
                assert context.cookies() == []  # deleted at its own path
                browser.close()
            assert not problems, problems
            assert proxy.outside == [], proxy.outside  # nothing asked outside /edgewise/
            assert any(p.startswith("/edgewise/api/stream") for p in proxy.asked), proxy.asked
        finally:
            pub.close()
            proxy.close()
            hub.stop()
