"""The demo's console: what happened, one line per thing, from the hub's live feed.

Events on the wire are lifecycle steps (start / update / end, and enter / exit / cross
for zones and lines); a person watching the demo wants what happened: "a face was at
lobby-cam for 3.2 s", "a person entered walkway". So a tracked thing is printed once,
when it ends (its score, how long it lasted, the clock time it began), a zone or line
step as a sentence, and start and update steps not at all.

The lines come from the hub's ``/api/stream`` (SSE), so they show what reached the hub
through the outbox and the broker: what the dashboard shows too. A dropped stream is
resumed with ``Last-Event-ID`` (the hub replays what was stored meanwhile).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import unicodedata
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

READ_TIMEOUT_S = 30.0  # the hub sends a keepalive every 15 s on an idle stream
RETRY_S = 1.0


def _clock(rfc3339: Any) -> str | None:
    """``HH:MM:SS`` in local time, from the wire's RFC 3339 UTC stamp."""
    if not isinstance(rfc3339, str):
        return None
    try:
        return datetime.fromisoformat(rfc3339).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return None


def _seconds(rfc3339: Any) -> float | None:
    try:
        return datetime.fromisoformat(rfc3339).timestamp() if isinstance(rfc3339, str) else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    """A name fit for one console line: a non-empty str with no control or format
    characters (no terminal escapes, no right-to-left overrides that reorder the line)."""
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    return None if any(unicodedata.category(c).startswith("C") for c in value) else value


def describe(event: Any) -> str | None:
    """The console line for one wire event, or ``None`` for a step that is not news
    (start, update) or an event too malformed to say anything true about."""
    if not isinstance(event, dict):
        return None
    phase = event.get("phase")
    label, stream = _text(event.get("label")), _text(event.get("stream"))
    if label is None or stream is None:
        return None
    if phase == "end":
        began = _clock(event.get("started_at"))
        start, end = _seconds(event.get("started_at")), _seconds(event.get("ts"))
        score = event.get("score")
        if began is None or start is None or end is None or isinstance(score, bool):
            return None
        if not isinstance(score, int | float) or not 0 <= score <= 1:
            return None
        return f"{began} {label} at {stream} ({score:.2f}) for {max(end - start, 0.0):.1f} s"
    at = _clock(event.get("ts"))
    if at is None:
        return None
    if phase in ("enter", "exit"):
        zone = _text(event.get("zone"))
        verb = "entered" if phase == "enter" else "left"
        return None if zone is None else f"{at} {label} {verb} {zone} at {stream}"
    if phase == "cross":
        line, direction = _text(event.get("line")), event.get("direction")
        if line is None or direction not in ("in", "out"):
            return None
        return f"{at} {label} crossed {line} ({direction}) at {stream}"
    return None


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """``(id, data)`` of each ``event`` message in an SSE byte stream's decoded lines."""
    ident: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ident, "\n".join(data)
            ident, data = None, []
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


class EventConsole:
    """A thread that prints ``describe`` of each event the hub streams, until ``stop``."""

    def __init__(self, url: str, out: IO[str], *, device: str | None = None) -> None:
        self.url = url.rstrip("/") + "/api/stream" + (f"?device={device}" if device else "")
        self.out = out
        self.printed = 0
        self._last: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-console", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def alive(self) -> bool:
        """False once the thread died of something it does not retry: the demo stops then,
        rather than go on printing nothing."""
        return self._thread.is_alive() or self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            # the hub restarting or stopping: resume from the last event
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                self._follow()
            self._stop.wait(RETRY_S)

    def _follow(self) -> None:
        req = urllib.request.Request(self.url)  # noqa: S310  our own 127.0.0.1 hub
        if self._last is not None:
            req.add_header("Last-Event-ID", self._last)
        with urllib.request.urlopen(req, timeout=READ_TIMEOUT_S) as r:  # noqa: S310  as above
            lines = (b.decode("utf-8", "replace") for b in r)
            self.feed(sse_events(lines), emit=self._print)

    def feed(self, messages: Iterator[tuple[str | None, str]], emit: Callable[[str], None]) -> None:
        for ident, data in messages:
            if self._stop.is_set():
                return
            if ident is not None and ident.isdigit():
                self._last = ident
            try:
                line = describe(json.loads(data))
            except ValueError:
                continue
            if line is not None:
                emit(line)

    def _print(self, line: str) -> None:
        try:
            print(line, file=self.out, flush=True)
        except BrokenPipeError:  # `edge demo | head`: the reader left; the demo goes on
            self._stop.set()
            return
        self.printed += 1
