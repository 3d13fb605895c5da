"""``HubClient`` (``edge-hub send``, ``send-model``): no redirect is followed, so the bearer
token never reaches another server, and each failure is one line saying what to fix.

Two real HTTP servers on 127.0.0.1: the "hub" answers every request with a redirect to
the "elsewhere" server, which records the Authorization headers it was sent.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cloud_sync.hub.api_client import HubClient
from cloud_sync.hub.errors import HubError

TOKEN = "fake-test-token-not-a-secret"


class _Server:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[_Server, list[str | None]]]:
    seen: list[str | None] = []

    class Elsewhere(_Quiet):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.do_GET()

    other = _Server(Elsewhere)

    class Redirecting(_Quiet):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", other.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            self.do_GET()

    hub = _Server(Redirecting)
    try:
        yield hub, seen
    finally:
        hub.close()
        other.close()


@pytest.mark.parametrize("call", ["send", "command"])
def test_a_redirect_is_refused_and_the_token_stays_home(
    servers: tuple[_Server, list[str | None]], call: str
) -> None:
    hub, seen = servers
    client = HubClient(hub.url, TOKEN, timeout_s=5)
    with pytest.raises(HubError) as got:
        if call == "send":
            client.send("cam-1", "ping", {})
        else:
            client.command("cam-1", "c1")
    msg = str(got.value)
    assert "answered 307, a redirect to http://127.0.0.1:" in msg, msg
    assert "--hub" in msg and "\n" not in msg
    assert seen == []  # the other server was never asked, with or without the token


def test_an_unreachable_hub_says_how_to_fix_it() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HubError, match=r"cannot reach the hub .*edge-hub serve"):
        HubClient(f"http://127.0.0.1:{port}", TOKEN, timeout_s=2).command("cam-1", "c1")
