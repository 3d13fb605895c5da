"""``edge-hub serve`` as users run it: SIGTERM with live-feed (SSE) clients connected
exits at once and cleanly, and ``/docs`` renders every operation of the generated
document in a real Chromium, offline, and tries a GET with the bearer token."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from cloud_sync.hub.openapi import openapi_document

from .hub_support import CHROMIUM, HubProc, launch_chromium, mosquitto

TOKEN = "docs-test-token"


def _env() -> dict[str, str]:
    return {**os.environ, "EDGE_HUB_TOKEN": TOKEN}


def _sse_client(port: int) -> socket.socket:
    """A raw feed client, connected and past the first frame (so the server holds it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    got = b""
    while b"retry: 2000" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return s


def _ended(s: socket.socket) -> bool:
    """The server ended the stream (the chunked terminator or a closed connection)."""
    s.settimeout(5)
    rest = b""
    try:
        while chunk := s.recv(4096):
            rest += chunk
            if rest.endswith(b"0\r\n\r\n"):
                return True
    except TimeoutError:
        return False
    return True


def test_sigterm_with_sse_clients_exits_promptly_and_cleanly(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, f"t{uuid.uuid4().hex[:8]}",
                      tmp_path / "hub.log", env=_env())  # fmt: skip
        clients = []
        try:
            clients = [_sse_client(hub.port) for _ in range(3)]
            t0 = time.monotonic()
            hub.p.send_signal(signal.SIGTERM)
            code = hub.p.wait(10)
            took = time.monotonic() - t0
        finally:
            if hub.p.poll() is None:
                hub.stop()
        log = (tmp_path / "hub.log").read_text()
        assert code == 0, log[-2000:]
        # the streams end on the signal (they poll every second), well before uvicorn's
        # 3 s cut of connections still open (which would mean they held the shutdown)
        assert took < 2.5, (took, log[-2000:])
        assert "Cancel" not in log and "Traceback" not in log, log[-2000:]
        assert all(_ended(c) for c in clients)
        for c in clients:
            c.close()


def test_docs_page_renders_every_operation_and_tries_a_get(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    ops = sum(len(item) for item in openapi_document()["paths"].values())
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, f"t{uuid.uuid4().hex[:8]}",
                      tmp_path / "hub.log", env=_env())  # fmt: skip
        try:
            with sync_api.sync_playwright() as pw:
                browser = launch_chromium(pw)
                page = browser.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("console", lambda m: m.type == "error" and problems.append(m.text))
                # nothing but the hub itself is asked for (it runs offline)
                page.on(
                    "request",
                    lambda r: r.url.startswith(hub.url("/")) or problems.append(r.url),
                )
                page.goto(hub.url("/docs"))
                page.wait_for_function(f"document.querySelectorAll('#ops > details').length"
                                       f" === {ops}", timeout=10_000)  # fmt: skip
                op = page.locator("details[id='get_api_devices']")
                op.locator("summary").first.click()
                op.locator("details summary", has_text="200 the devices").click()
                assert '"$ref"' not in op.inner_text()  # schemas are shown expanded
                assert "device_id" in op.inner_text()
                page.fill("#token", TOKEN)
                op.locator("button").click()
                page.wait_for_function(
                    "document.querySelector(\"details[id='get_api_devices'] form pre\")"
                    ".textContent.startsWith('200 /api/devices')", timeout=10_000,
                )  # fmt: skip
                assert '"devices": []' in op.locator("form pre").inner_text()
                browser.close()
            assert not problems, problems
        finally:
            hub.stop()
