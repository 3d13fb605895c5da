"""A loopback reverse proxy that serves an HTTP server under a path prefix, as nginx's
``location /edgewise/ { proxy_pass http://hub:8080/; }`` does: ``/edgewise/x`` is asked
upstream as ``/x``; any path outside the prefix is a 404 here, and recorded, so a test
can assert that a page never left it.

One request per connection (``Connection: close`` both ways), so the head of each is
parsed and everything after it is relayed as bytes: bodies, chunked answers and SSE.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.tcp_proxy import listen_loopback


class PrefixProxy:
    def __init__(self, upstream_port: int, prefix: str) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.prefix = prefix.rstrip("/")
        self.outside: list[str] = []
        """Paths asked that were not under the prefix (answered 404)."""
        self.asked: list[str] = []
        self._listen = listen_loopback(64)
        self.port = int(self._listen.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listen.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listen.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            raw, _, rest = head.partition(b"\r\n\r\n")
            line, *headers = raw.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ", 2)
            self.asked.append(target)
            if target != self.prefix and not target.startswith(self.prefix + "/"):
                self.outside.append(target)
                client.sendall(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            kept = [h for h in headers if h.split(":", 1)[0].strip().lower() != "connection"]
            upstream_head = "\r\n".join(
                [f"{method} {target[len(self.prefix) :] or '/'} {version}", *kept,
                 "Connection: close", "", ""]
            )  # fmt: skip
            with socket.create_connection(self.upstream, timeout=10) as up:
                up.settimeout(None)  # a live feed may be quiet for long
                up.sendall(upstream_head.encode("latin-1") + rest)
                threading.Thread(target=self._pump, args=(client, up), daemon=True).start()
                self._pump(up, client)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        """Bytes from ``src`` to ``dst`` until ``src`` closes (or either fails)."""
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
