"""The demo's console lines: one per thing that happened, from wire events, and nothing
(not a crash, not a false line) from broken or hostile ones."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from edge.demo.console import EventConsole, describe, sse_events

T0 = "2026-12-02T12:00:01.000Z"
T1 = "2026-12-02T12:00:04.200Z"


def _local(rfc: str) -> str:
    return datetime.fromisoformat(rfc).astimezone().strftime("%H:%M:%S")


def _ev(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"stream": "lobby-cam", "label": "face", "score": 0.9137,
                            "phase": "end", "started_at": T0, "ts": T1}  # fmt: skip
    return {**base, **kw}


def test_an_end_says_what_where_how_sure_and_how_long() -> None:
    assert describe(_ev()) == f"{_local(T0)} face at lobby-cam (0.91) for 3.2 s"


def test_start_and_update_are_not_news() -> None:
    assert describe(_ev(phase="start")) is None
    assert describe(_ev(phase="update")) is None


def test_zones_and_lines_read_as_sentences() -> None:
    at = _local(T1)
    enter = _ev(label="person", phase="enter", zone="walkway")
    assert describe(enter) == f"{at} person entered walkway at lobby-cam"
    leave = _ev(label="cat", phase="exit", zone="walkway")
    assert describe(leave) == f"{at} cat left walkway at lobby-cam"
    cross = _ev(label="person", phase="cross", line="door", direction="in")
    assert describe(cross) == f"{at} person crossed door (in) at lobby-cam"


def test_a_clock_step_back_is_never_a_negative_duration() -> None:
    assert describe(_ev(started_at=T1, ts=T0)) == f"{_local(T1)} face at lobby-cam (0.91) for 0.0 s"


@pytest.mark.parametrize(
    "event",
    [
        None, [], "face", 3,
        _ev(label=None), _ev(label=""), _ev(label=7), _ev(stream=None),
        _ev(label="face\x1b[2Jcleared"), _ev(stream="cam\nfake line"),
        _ev(label="face\u202etac"), _ev(label="\u200b"), _ev(label="x" * 201),
        _ev(started_at="yesterday"), _ev(ts=None), _ev(started_at=12),
        _ev(score=None), _ev(score="0.9"), _ev(score=True), _ev(score=1.5), _ev(score=-0.1),
        _ev(score=float("nan")),
        _ev(phase="enter"), _ev(phase="enter", zone=None, ts="x"),
        _ev(phase="exit", zone="\x07"),
        _ev(phase="cross", line="door"), _ev(phase="cross", line="door", direction="up"),
        _ev(phase="cross", direction="in"), _ev(phase="teleport"), _ev(phase=None),
    ],
)  # fmt: skip
def test_broken_and_hostile_events_print_nothing(event: Any) -> None:
    assert describe(event) is None


def test_sse_messages_are_split_on_blank_lines_with_their_ids() -> None:
    raw = [
        "retry: 2000\n", "\n",
        ": keepalive 2026-12-02T12:00:00Z\n", "\n",
        "id: 7\n", "event: event\n", 'data: {"a":\n', "data: 1}\n", "\n",
        "id: 8\r\n", "data: x\r\n", "\r\n",
        "data: no blank line after it\n",  # a cut stream: the half message is dropped
    ]  # fmt: skip
    assert list(sse_events(iter(raw))) == [("7", '{"a":\n1}'), ("8", "x")]


def test_the_console_prints_news_skips_junk_and_remembers_where_it_was() -> None:
    out = io.StringIO()
    console = EventConsole("http://127.0.0.1:1", out, device="demo-device")
    messages = [
        ("1", json.dumps(_ev(phase="start"))),
        ("2", "{not json"),
        ("3", json.dumps(_ev())),
        ("oops", json.dumps(_ev(label="speech", stream="lobby-mic"))),
        (None, "[]"),
    ]
    console.feed(iter(messages), emit=console._print)
    assert out.getvalue().splitlines() == [
        f"{_local(T0)} face at lobby-cam (0.91) for 3.2 s",
        f"{_local(T0)} speech at lobby-mic (0.91) for 3.2 s",
    ]
    assert console.printed == 2
    assert console._last == "3"  # a resume asks for what came after the last numbered one
    assert console.url == "http://127.0.0.1:1/api/stream?device=demo-device"


class _FlakyHub:
    """A real HTTP server on 127.0.0.1 that plays a hub's ``/api/stream``: each connection
    gets the next scripted body, then the server drops it (a hub restarting)."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.resumed_from: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.resumed_from.append(self.headers.get("Last-Event-ID"))
                body = outer.bodies.pop(0) if outer.bodies else b"retry: 2000\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _sse(n: int, event: Any) -> bytes:
    return f"id: {n}\nevent: event\ndata: {json.dumps(event)}\n\n".encode()


def test_a_dropped_stream_resumes_after_the_last_event_and_junk_is_survived() -> None:
    hub = _FlakyHub(
        [
            _sse(1, _ev()) + b"id: 2\ndata: {cut mid-",  # dropped mid-message
            b"\xff\xfe\x00garbage\n\n",  # not SSE, not UTF-8
            _sse(3, _ev(label="cat", phase="exit", zone="walkway")),
        ]
    )
    out = io.StringIO()
    console = EventConsole(hub.url, out)
    console.start()
    try:
        deadline = time.monotonic() + 10
        while console.printed < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert console.alive
    finally:
        console.stop()
        hub.close()
    assert out.getvalue().splitlines() == [
        f"{_local(T0)} face at lobby-cam (0.91) for 3.2 s",
        f"{_local(T1)} cat left walkway at lobby-cam",
    ]
    assert hub.resumed_from[:3] == [None, "1", "1"]


def test_a_reader_that_left_stops_the_console_not_the_demo() -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    console = EventConsole("http://127.0.0.1:1", Closed())
    console.feed(iter([("1", json.dumps(_ev())), ("2", json.dumps(_ev()))]), console._print)
    assert console.printed == 0 and console.alive  # stopped on purpose: not a failure
