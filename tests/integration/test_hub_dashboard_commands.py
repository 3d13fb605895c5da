"""Commands from the dashboard's device page, clicked in headless Chromium, against a
real ``edge run`` daemon (face video, MQTT) through a real ``edge-hub serve`` and a
private mosquitto: "snapshot now" shows the JPEG from the device's reply; a config the
device refuses shows its validation error; a model update with a bad signature shows the
device's refusal; on a hub with a token, logged in on the page. The page also shows the
model, provider and call count the daemon really reports (telemetry ``calls`` grows with
the frames it ran on).

EDGEWISE_UPDATE_SCREENSHOT=1 saves docs/dashboard-commands.png from this test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cloud_sync import signing
from tests.fixtures.video import DEFAULT_SPANS, face_video

from .hub_support import CHROMIUM, HubProc, launch_chromium, mosquitto, wait_for
from .test_device_to_hub import DEVICE, device_config

pytestmark = pytest.mark.slow
TOKEN = "cmd-" + uuid.uuid4().hex


def test_device_page_commands_round_trip_with_a_real_daemon(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    video, _ = face_video(tmp_path / "door.avi", 240, DEFAULT_SPANS)
    _key, pub = signing.generate()
    with mosquitto(tmp_path) as port:
        hub = HubProc(
            f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1", tmp_path / "hub.log",
            env={**os.environ, "EDGE_HUB_TOKEN": TOKEN},
        )  # fmt: skip
        cfg = tmp_path / "device.toml"
        cfg.write_text(device_config(tmp_path, video, port, pub, 0.6))
        log = (tmp_path / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge.cli.main", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:

            def calls() -> int:
                got = hub.get("/api/devices", token=TOKEN)["devices"]
                devs = [d for d in got if d["device_id"] == DEVICE]
                tel = (devs[0]["telemetry"] if devs else None) or {}
                return int(tel.get("detectors", {}).get("face", {}).get("calls", 0))

            wait_for(lambda: calls() > 0, 30)
            with sync_api.sync_playwright() as pw:
                browser = launch_chromium(pw)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                problems: list[str] = []
                page.on("console", lambda m: m.type == "error" and problems.append(m.text))
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("response", lambda r: r.status >= 400 and problems.append(r.url))
                # a hub with a token: log in on the page (the session cookie; every POST
                # below carries the CSRF header), then the device page the URL names
                page.goto(hub.url(f"/static/dashboard.html#/device/{DEVICE}"))
                page.wait_for_selector("#login:not([hidden])", timeout=5000)
                problems.clear()  # the 401 that shows the login form is expected
                page.fill("#login-token", TOKEN)
                page.click("#login button[type=submit]")
                page.wait_for_selector("#login", state="hidden", timeout=5000)
                page.wait_for_selector('#dev-state[data-state="online"]', timeout=10000)
                cells = page.locator('#dev-models tr[data-detector="face"] td')
                assert cells.nth(1).text_content() == "blazeface-short"
                assert "XNNPACK" in (cells.nth(3).text_content() or "")
                assert int(cells.nth(6).text_content() or "0") > 0
                page.wait_for_selector("#dev-chart-video path[data-series='door']")

                # snapshot now: the device's JPEG, of the video's size
                page.click("#cmd-snapshot button[type=submit]")
                page.wait_for_selector("#cmd-snapshot-out img.cmd-snapshot", timeout=30000)
                size = page.eval_on_selector(
                    "#cmd-snapshot-out img.cmd-snapshot",
                    "i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])",
                )
                assert size == [640, 480]
                assert page.get_attribute("#cmd-snapshot-out", "data-ok") == "true"

                # a config the device refuses: its validation error, word for word
                bad = cfg.read_text().replace("threshold = 0.6", "threshold = 5.0")
                page.fill("#cmd-config-toml", bad)
                page.click("#cmd-config button[type=submit]")
                page.wait_for_selector("#cmd-config-out.refused", timeout=30000)
                text = page.text_content("#cmd-config-out") or ""
                assert text.startswith("refused: ") and "detectors.face.threshold" in text, text
                assert "less than 1" in text

                # a model update with a bad signature: refused before any download
                for name, value in {
                    "detector": "face", "url": "http://127.0.0.1:9/bundle.tar",
                    "sha256": "0" * 64, "manifest": '{"name": "x"}', "signature": "AAAA",
                }.items():  # fmt: skip
                    page.fill(f"#cmd-model-{name}", value)
                page.click("#cmd-model button[type=submit]")
                page.wait_for_selector("#cmd-model-out.refused", timeout=30000)
                assert (page.text_content("#cmd-model-out") or "").startswith("refused: ")
                # the list of commands has all three, with their replies
                page.wait_for_function(
                    "() => document.querySelectorAll('#dev-commands tbody tr').length >= 3"
                )
                names = page.locator("#dev-commands tbody tr td:nth-child(2)").all_text_contents()
                assert sorted(names[:3]) == ["config", "model", "snapshot"]
                assert problems == [], problems
                if os.environ.get("EDGEWISE_UPDATE_SCREENSHOT") == "1":
                    page.locator("#view-device .commands").screenshot(
                        path=str(
                            Path(__file__).resolve().parents[2] / "docs" / "dashboard-commands.png"
                        )
                    )
                # the daemon still runs, on the config it had
                assert daemon.poll() is None and cfg.read_text() != bad
                browser.close()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            log.close()
            hub.stop()
