"""Fetching a model file for the ``model`` command, within hard limits.

- **A wall-clock deadline** (``sync.model_download_timeout_s``) over everything: name
  resolution, connect, TLS handshake, redirects, headers and body. A watchdog thread
  shuts the socket down when it passes, so no read, however slow its bytes trickle in,
  outlives it (a socket timeout alone bounds one read, not the sum of them).
- **A minimum average rate** (``sync.model_download_min_bytes_per_s``) once
  ``MODEL_DOWNLOAD_GRACE_S`` have passed: a hopeless trickle is cut early.
- **A size cap**, checked against ``Content-Length`` before the body and against the bytes
  as they arrive; a body shorter than its ``Content-Length`` is refused, a longer one is
  not read past it (the sha256 the signed manifest pins decides either way).
- **http and https only**, redirects included (at most ``MAX_REDIRECTS``; https never
  redirects to http); https verifies the server's certificate.
- A failure of any kind removes the partial file and raises ``DownloadError`` naming
  the URL (without its query string, which may hold a token) and the limit that was hit.

No proxy is used: the device fetches the URL itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from edge.config.sync import (
    MODEL_DOWNLOAD_GRACE_S,
    MODEL_DOWNLOAD_MIN_BYTES_PER_S,
    MODEL_DOWNLOAD_TIMEOUT_S,
)
from edge.errors import InputError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
_WATCH_S = 0.05  # how often the watchdog looks: the deadline holds to about this
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class DownloadError(InputError):
    """A model download failed or broke a limit; the partial file is gone."""


def shown(url: str) -> str:
    """``url`` for messages and logs: no user info, query or fragment (tokens live there)."""
    try:
        u = urlsplit(url)
        host = u.hostname or ""
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return "(an unparsable URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{u.scheme}://{host}{port}{u.path}"


class _Limits:
    """The deadline, the rate rule and cancellation, checked by the reader and the watchdog."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        min_bytes_per_s: float,
        grace_s: float,
        cancel: threading.Event | None,
    ) -> None:
        self.url = shown(url)
        self.start = time.monotonic()
        self.deadline = self.start + timeout_s
        self.timeout_s = timeout_s
        self.min_rate = min_bytes_per_s
        self.grace_s = grace_s
        self.cancel = cancel
        self.size = 0  # bytes received so far (written by the reader, read by the watchdog)
        self.broken: str | None = None  # the first limit broken, once it is

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def violation(self) -> str | None:
        now = time.monotonic()
        elapsed = now - self.start
        if self.cancel is not None and self.cancel.is_set():
            return f"model: download of {self.url} cancelled: the command worker is stopping"
        if now >= self.deadline:
            return (
                f"model: download of {self.url} took longer than {self.timeout_s:g} s "
                f"(sync.model_download_timeout_s); {self.size} bytes had arrived"
            )
        if self.min_rate > 0 and elapsed >= self.grace_s and self.size < self.min_rate * elapsed:
            return (
                f"model: download of {self.url} too slow: {self.size} bytes in {elapsed:.1f} s, "
                f"under the minimum average of {self.min_rate:g} bytes/s "
                "(sync.model_download_min_bytes_per_s)"
            )
        return None

    def check(self) -> None:
        reason = self.broken or self.violation()
        if reason is not None:
            self.broken = reason
            raise DownloadError(reason)


class _Watchdog:
    """Shuts the current connection's socket down the moment a limit is broken."""

    def __init__(self, limits: _Limits) -> None:
        self._limits = limits
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name="model-download", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
        if sock is not None and self._limits.broken is not None:
            self._cut()

    def _main(self) -> None:
        while not self._done.wait(_WATCH_S):
            reason = self._limits.violation()
            if reason is not None:
                self._limits.broken = self._limits.broken or reason
                self._cut()
                return

    def _cut(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                # the plain socket's shutdown, also for an SSLSocket: it wakes a blocked
                # recv (or handshake) in the reader's thread at once
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Connection(http.client.HTTPConnection):
    """An HTTP connection to an address resolved beforehand, whose socket the watchdog holds."""

    def __init__(self, host: str, port: int, addr: tuple[str, int], timeout: float,
                 watchdog: _Watchdog) -> None:  # fmt: skip
        super().__init__(host, port, timeout=timeout)
        self._addr = addr
        self._watchdog = watchdog

    def connect(self) -> None:
        sock = socket.socket(_family(self._addr[0]), socket.SOCK_STREAM)
        self._watchdog.attach(sock)
        sock.settimeout(self.timeout)
        sock.connect(self._addr)
        self.sock = self._wrap(sock)

    def _wrap(self, sock: socket.socket) -> socket.socket:
        return sock


class _TLSConnection(_Connection):
    def __init__(self, host: str, port: int, addr: tuple[str, int], timeout: float,
                 watchdog: _Watchdog, context: ssl.SSLContext) -> None:  # fmt: skip
        super().__init__(host, port, addr, timeout, watchdog)
        self._tls = context

    def _wrap(self, sock: socket.socket) -> socket.socket:
        tls = self._tls.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
        self._watchdog.attach(tls)  # wrap_socket detached the plain one
        tls.do_handshake()
        return tls


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _resolve(host: str, port: int, limits: _Limits) -> tuple[str, int]:
    """The host's first address, within the deadline (``getaddrinfo`` cannot be
    interrupted, so it runs on a thread of its own that is left behind if it hangs)."""
    found: list[tuple[str, int]] = []
    error: list[OSError] = []

    def run() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            ip = (socket.AF_INET, socket.AF_INET6)
            found.extend((str(i[4][0]), port) for i in infos if i[0] in ip)
        except OSError as exc:
            error.append(exc)

    t = threading.Thread(target=run, name="model-download-dns", daemon=True)
    t.start()
    t.join(max(0.0, limits.left()))
    limits.check()
    if error:
        raise DownloadError(f"model: cannot download {limits.url}: {host}: {error[0]}")
    if not found:
        raise DownloadError(f"model: cannot download {limits.url}: {host} has no address")
    return found[0]


def _open(
    url: str, limits: _Limits, watchdog: _Watchdog, context: ssl.SSLContext | None
) -> tuple[_Connection, http.client.HTTPResponse]:
    """GET ``url``, following redirects; the connection and its 200 response."""
    for _hop in range(MAX_REDIRECTS + 1):
        u = urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise DownloadError(
                f"model: {limits.url} redirects to a {u.scheme or 'schemeless'} URL; "
                "only http and https are fetched"
            )
        if u.username is not None or u.password is not None:
            raise DownloadError(
                f"model: {shown(url)}: credentials in the URL are not supported; use a "
                "URL that needs none (e.g. a signed, expiring one)"
            )
        if not u.hostname:
            raise DownloadError(f"model: {shown(url)} names no host")
        port = u.port or (443 if u.scheme == "https" else 80)
        addr = _resolve(u.hostname, port, limits)
        timeout = max(0.01, limits.left())
        conn: _Connection
        if u.scheme == "https":
            tls = context if context is not None else ssl.create_default_context()
            conn = _TLSConnection(u.hostname, port, addr, timeout, watchdog, tls)
        else:
            conn = _Connection(u.hostname, port, addr, timeout, watchdog)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        try:
            conn.request(
                "GET", target, headers={"User-Agent": "edgewise", "Accept-Encoding": "identity"}
            )
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status in _REDIRECTS:
            location = resp.getheader("Location")
            conn.close()
            if not location:
                raise DownloadError(f"model: {shown(url)} redirects without a Location")
            nxt = urljoin(url, location)
            if u.scheme == "https" and urlsplit(nxt).scheme == "http":
                raise DownloadError(
                    f"model: {shown(url)} redirects from https to http ({shown(nxt)}); refused"
                )
            url = nxt
            continue
        if resp.status != 200:
            conn.close()
            raise DownloadError(
                f"model: cannot download {shown(url)}: HTTP {resp.status} {resp.reason}"
            )
        return conn, resp
    raise DownloadError(f"model: {limits.url}: more than {MAX_REDIRECTS} redirects")


def _content_length(resp: http.client.HTTPResponse, url: str, max_bytes: int) -> int | None:
    values = resp.headers.get_all("Content-Length") or []
    if not values or resp.getheader("Transfer-Encoding"):
        return None
    if len(set(values)) != 1 or not values[0].strip().isdigit():
        raise DownloadError(f"model: {url} sent an invalid Content-Length {values!r}")
    length = int(values[0])
    if length > max_bytes:
        raise DownloadError(f"model: {url} is {length} bytes, over the cap of {max_bytes}")
    return length


def download(
    url: str,
    dest: Path,
    *,
    timeout_s: float = MODEL_DOWNLOAD_TIMEOUT_S,
    max_bytes: int,
    min_bytes_per_s: float = MODEL_DOWNLOAD_MIN_BYTES_PER_S,
    grace_s: float = MODEL_DOWNLOAD_GRACE_S,
    cancel: threading.Event | None = None,
    context: ssl.SSLContext | None = None,
) -> str:
    """Fetch ``url`` (http or https) into ``dest`` within the limits above; its sha256 (hex).

    ``cancel``, once set, stops the download as a broken limit does. ``context``: the TLS
    context for https (default: the system's CAs, hostname checked)."""
    limits = _Limits(url, timeout_s, min_bytes_per_s, grace_s, cancel)
    h = hashlib.sha256()
    try:
        with _Watchdog(limits) as watchdog, dest.open("wb") as out:
            conn, resp = _open(url, limits, watchdog, context)
            try:
                length = _content_length(resp, limits.url, max_bytes)
                while True:
                    limits.check()
                    if conn.sock is not None:
                        conn.sock.settimeout(max(0.01, limits.left()))
                    chunk = resp.read1(CHUNK)  # one recv at most: the limits see every one
                    if not chunk:
                        break
                    limits.size += len(chunk)
                    if limits.size > max_bytes:
                        raise DownloadError(
                            f"model: {limits.url} sent more than the cap of {max_bytes} bytes"
                        )
                    h.update(chunk)
                    out.write(chunk)
                limits.check()  # an EOF may be the watchdog's cut
                if length is not None and limits.size != length:
                    raise DownloadError(
                        f"model: {limits.url}: the connection closed after {limits.size} of "
                        f"the {length} bytes its Content-Length announced"
                    )
            finally:
                conn.close()
    except DownloadError:
        dest.unlink(missing_ok=True)
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        dest.unlink(missing_ok=True)
        if limits.broken is not None or limits.violation() is not None:
            raise DownloadError(limits.broken or limits.violation() or "") from None
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(
            f"model: cannot download {limits.url}: {type(exc).__name__}: {reason}"
        ) from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    log.info("model: %s: %d bytes in %.1f s", limits.url, limits.size,
             time.monotonic() - limits.start)  # fmt: skip
    return h.hexdigest()
