"""The localhost listener: ``/healthz`` (200 while every stream has frames) and ``/metrics``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], str],
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok, detail = outer._health()
                    self._send(200 if ok else 503, "application/json", json.dumps(detail))
                elif path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", outer._metrics())
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
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("health listener on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
