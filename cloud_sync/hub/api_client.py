"""A small client of the hub's command API (``edge-hub send-model``, ``edge-hub send``):
``POST /api/devices/<id>/commands`` and polling ``GET`` of the same path for the reply.

Every failure is one ``HubError`` line that names the hub and the fix; the bearer
token is sent as a header only, never printed.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_sync.hub.errors import HubError
from edge import exit_codes
from edge.wire import DEVICE_ID_RE

DEFAULT_HUB = "http://127.0.0.1:8080"
HUB_ENV = "EDGE_HUB_URL"
TOKEN_ENV = "EDGE_HUB_TOKEN"  # noqa: S105 (the variable's name, not a secret)
REQUEST_TIMEOUT_S = 10.0
POLL_S = 0.5


class CommandRefusedError(HubError):
    """The device answered the command with ``ok: false``."""

    exit_code = exit_codes.FAILED


class NoReplyError(HubError):
    """No reply came within the wait."""

    exit_code = exit_codes.REFUSED


@dataclass(frozen=True, slots=True)
class Sent:
    device: str
    id: str
    topic: str


def read_token(token_file: Path | None, env: Mapping[str, str] | None = None) -> str | None:
    """``--token-file`` (its first line), else ``$EDGE_HUB_TOKEN``, else None."""
    env = os.environ if env is None else env
    if token_file is None:
        return env.get(TOKEN_ENV) or None
    try:
        lines = token_file.read_text(encoding="utf-8").strip().splitlines()
    except FileNotFoundError:
        raise HubError(f"--token-file {token_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HubError(f"--token-file {token_file}: cannot read it ({exc})") from None
    if not lines or not lines[0].strip():
        raise HubError(f"--token-file {token_file}: the file is empty; put the hub's token in it")
    return lines[0].strip()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: urllib would send the bearer token on to wherever the
    ``Location`` points (another host included) and turn a POST into a GET. The 3xx is
    raised as an ``HTTPError`` instead, and reported with where it pointed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class HubClient:
    def __init__(self, base: str, token: str | None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        url = urllib.parse.urlsplit(base)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise HubError(f"--hub: {base!r} must be http://HOST:PORT or https://HOST")
        self.base = base.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        # the scheme is checked in __init__: http or https only
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with _OPENER.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, path, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout | TimeoutError):
                reason = f"no answer within {self.timeout_s:g} s"
            raise HubError(
                f"cannot reach the hub at {self.base} ({reason}); is `edge-hub serve` running "
                f"there? (--hub URL or {HUB_ENV})"
            ) from None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HubError(
                f"{self.base}{path}: the answer is not JSON; is --hub an edge-hub?"
            ) from None

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> HubError:
        try:
            said = json.loads(exc.read() or b"null")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            said = None
        detail = said.get("error") if isinstance(said, dict) else None
        detail = str(detail or exc.reason)[:300]
        if exc.code == 401:
            fix = (
                f"the token was refused; check --token-file or {TOKEN_ENV}"
                if self._token
                else f"the hub needs a token; pass --token-file FILE or set {TOKEN_ENV}"
            )
            return HubError(f"{self.base}: 401 unauthorized ({detail}); {fix}")
        if 300 <= exc.code < 400:
            where = str(exc.headers.get("Location", "?"))[:300] if exc.headers else "?"
            return HubError(
                f"{self.base}: {method} {path} answered {exc.code}, a redirect to {where}; "
                "redirects are not followed (the token would go with them): pass the hub's "
                "own address as --hub"
            )
        return HubError(f"{self.base}: {method} {path} answered {exc.code}: {detail}")

    def send(self, device: str, name: str, args: dict[str, Any]) -> Sent:
        """Publish one command through the hub; its id (the hub answers 202)."""
        _check_device(device)
        got = self._request("POST", f"/api/devices/{device}/commands", {"name": name, "args": args})
        if not isinstance(got, dict) or not isinstance(got.get("id"), str):
            raise HubError(f"{self.base}: the hub's answer has no command id: {str(got)[:200]}")
        return Sent(device, got["id"], str(got.get("topic", "")))

    def command(self, device: str, cmd_id: str) -> dict[str, Any] | None:
        """The hub's record of one command (``replied_at`` set once the device answered)."""
        _check_device(device)
        got = self._request("GET", f"/api/devices/{device}/commands")
        rows = got.get("commands") if isinstance(got, dict) else None
        if not isinstance(rows, list):
            raise HubError(f"{self.base}: /api/devices/{device}/commands has no 'commands' list")
        for row in rows:
            if isinstance(row, dict) and row.get("id") == cmd_id:
                return row
        return None

    def wait_reply(
        self,
        sent: Sent,
        timeout_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the device's reply is recorded; ``NoReply`` after ``timeout_s``."""
        deadline = clock() + timeout_s
        while True:
            row = self.command(sent.device, sent.id)
            if row is not None and row.get("replied_at") is not None:
                return row
            if clock() >= deadline:
                state = "sent, no reply" if row is not None else "not listed by the hub"
                raise NoReplyError(
                    f"{sent.device}: no reply to command {sent.id} within {timeout_s:g} s "
                    f"({state}); is the device online? (GET /api/devices/{sent.device})"
                )
            sleep(POLL_S)


def _check_device(device: str) -> None:
    if not DEVICE_ID_RE.fullmatch(device):
        raise HubError(f"--device: {device!r} is not a device id (letters, digits, _ . -)")


def reply_message(row: dict[str, Any]) -> str:
    reply = row.get("reply")
    msg = reply.get("message") if isinstance(reply, dict) else None
    return str(msg) if msg is not None else "(no message)"
