"""The localhost listener: ``/healthz`` (200 while every stream has frames and every
component is healthy, else 503 with the reasons) and ``/metrics``.

The listener runs as a ``GuardedThread``; if it cannot be kept up its health goes
``fatal`` (nobody could see the device's health) and the daemon exits non-zero.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from edge.redact import redact_json
from edge.supervise import ComponentHealth, GuardedThread

# serve_forever restarted at most this often; past it the listener is a fatal failure
MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0

log = logging.getLogger(__name__)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], str],
    ) -> None:
        # here, not at the top: http.server pulls in http.client, ssl and email (~1.5 MB)
        # that a daemon with the listener off never needs
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok, detail = outer._health()
                    body = json.dumps(redact_json(detail))  # no credential leaves the device
                    self._send(200 if ok else 503, "application/json", body)
                elif path == "/metrics":
                    try:
                        text = outer._metrics()
                    except Exception as e:  # a collector bug: say so, keep serving /healthz
                        log.exception("health: /metrics failed")
                        self._send(500, "text/plain", f"metrics failed: {type(e).__name__}\n")
                        return
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", text)
                else:
                    self._send(404, "text/plain", "not found: try /healthz or /metrics\n")

            def _send(self, code: int, ctype: str, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        self._health = health
        self._metrics = metrics
        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            from edge.errors import ConfigError

            raise ConfigError(
                f"health: cannot listen on {host}:{port} ({exc.strerror}); change [health] port"
            ) from None
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._stopping = threading.Event()
        self._thread = GuardedThread(
            "health",
            self._serve,
            stop=self._stopping,
            max_restarts=MAX_RESTARTS,
            window_s=RESTART_WINDOW_S,
        )

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.5)

    def start(self) -> None:
        self._thread.start()
        log.info("health listener on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    def health(self) -> list[ComponentHealth]:
        return [self._thread.health()]

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()  # returns once serve_forever has (it must be running)
        self._thread.join(2)
        self._server.server_close()
