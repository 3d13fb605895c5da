"""``edge.redact``: credentials masked in text, JSON, log records and a process's stderr.

The hostile inputs: an ``@`` or ``/`` in a password, percent-encoding, several URLs in one
line, IPv6 hosts, a userinfo without a password, tokens in queries and headers. And the
lines that must come through unchanged (the redactor may not eat ordinary log text)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cloud_sync.telemetry import stream_v1
from edge.cli.run_cmd import JsonFormatter
from edge.config import StreamConfig
from edge.native_stderr import native_debug_vars
from edge.redact import RedactingFilter, is_secret_name, redact, redact_json, scrub_record
from edge.sources.video import LiveVideoSource
from edge.stats import StreamStats

REPO = Path(__file__).resolve().parents[2]

MASKED = [
    ("rtsp://admin:pw@10.0.0.5:554/stream", "rtsp://admin:***@10.0.0.5:554/stream"),
    # an unescaped "@" (or "/") in the password: masked to the last "@"
    ("rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:p@ss/w@rd@cam:554/live", "rtsp://admin:***@cam:554/live"),
    ("rtsp://admin:it's@cam/x", "rtsp://admin:***@cam/x"),
    # percent-encoded characters in user and password
    ("rtsp://ad%40min:p%40ss%3Aw@cam/x", "rtsp://ad%40min:***@cam/x"),
    # IPv6 hosts, with a zone id too
    ("rtsp://admin:pw@[fe80::1%25eth0]:554/s", "rtsp://admin:***@[fe80::1%25eth0]:554/s"),
    ("http://u:pw@[::1]:8080/a.mjpg", "http://u:***@[::1]:8080/a.mjpg"),
    # several URLs in one line, with and without blanks between them
    (
        "cam rtsp://a:p1@h1/x failed, now rtsp://b:p2@h2/y",
        "cam rtsp://a:***@h1/x failed, now rtsp://b:***@h2/y",
    ),
    ("rtsp://a:p1@h1/x,rtsp://b:p2@h2/y", "rtsp://a:***@h1/x,rtsp://b:***@h2/y"),
    # a userinfo without a password is how tokens travel (git, Sentry DSNs): masked whole
    ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),
    # quoted, as repr() and OpenCV print it
    ("filename='rtsp://admin:pw@cam/x' ...", "filename='rtsp://admin:***@cam/x' ..."),
    # a Path collapses "//": "http:/user:pw@host"
    (
        "http:/admin:pw@cam/x.mp4: video file not found",
        "http:/admin:***@cam/x.mp4: video file not found",
    ),
    # a URL inside another URL's query, percent-encoded
    ("next=rtsp%3A%2F%2Fadmin%3Apw%40cam%2Fx&y=1", "next=rtsp%3A%2F%2Fadmin%3A***%40cam%2Fx&y=1"),
    # query parameters and key=value pairs that say secret
    ("http://cam/v.mjpg?user=bob&token=abc&x=1", "http://cam/v.mjpg?user=bob&token=***&x=1"),
    ("GET /api/events?access_token=t0k HTTP/1.1", "GET /api/events?access_token=*** HTTP/1.1"),
    (
        "https://s3/b/k?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=ab12",
        "https://s3/b/k?X-Amz-Credential=***&X-Amz-Signature=***",
    ),
    ("rtsp://cam/x?pwd=1&PassWord=2;api_key=3", "rtsp://cam/x?pwd=***&PassWord=***;api_key=***"),
    ('password="hunter 2" user=bob', 'password="***" user=bob'),
    ("client_secret=s3 sig=abc key=k", "client_secret=*** sig=*** key=***"),
    # a token in a quoted value that is not a secret itself is still found
    ("src='http://cam/v?token=abc'", "src='http://cam/v?token=***'"),
    ("Authorization: Basic YWRtaW46cHc=", "Authorization: Basic ***"),
    ("proxy-authorization: Bearer eyJhbGciOi.x.y", "proxy-authorization: Bearer ***"),
    ("postgresql://hub:dbpw@db:5432/hub", "postgresql://hub:***@db:5432/hub"),
    ("mqtts://dev1:pw@broker:8883", "mqtts://dev1:***@broker:8883"),
    # a multi-line traceback: every line
    (
        "Traceback:\n  open('rtsp://a:p@h')\nValueError: rtsp://a:p@h",
        "Traceback:\n  open('rtsp://a:***@h')\nValueError: rtsp://a:***@h",
    ),
]

UNCHANGED = [
    "rtsp://10.0.0.5:554/stream",
    "rtsp://[::1]:554/s",
    "[tcp @ 0x5625] Connection to tcp://127.0.0.1:9?timeout=0 failed: Connection refused",
    "http://cam/a?email=ops@example.com",
    "mail ops@example.com about cam1",
    "max_tokens=5 monkey=1 keyframe=3 tokens=2",
    "cannot open (attempt 3); reconnecting",
    "C:/Users/me@corp/file.txt",
    "rtsp://admin:***@cam/x token=*** Authorization: Basic ***",
    "",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_credentials_are_masked_and_user_and_host_stay(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent: a masked text stays as it is


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_comes_through_unchanged(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("Passwd", True), ("pwd", True), ("token", True),
     ("access_token", True), ("csrftoken", True), ("api-key", True), ("apiKey", True),
     ("key", True), ("X-Amz-Signature", True), ("client_secret", True), ("sig", True),
     ("session", True), ("user", False), ("keyframe", False), ("monkey", False),
     ("tokens", False), ("timeout", False), ("signal", False)],
)  # fmt: skip
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_json_values_are_redacted_at_every_depth_and_keep_their_types() -> None:
    doc = {
        "sources": {"cam": "rtsp://admin:pw@cam/x"},
        "problems": ["x.toml:3 streams.0: cannot read 'http://u:pw@h/v?token=t'"],
        "n": 3,
        "ok": False,
        "none": None,
        "pair": ("rtsp://a:b@h", 1.5),
    }
    assert redact_json(doc) == {
        "sources": {"cam": "rtsp://admin:***@cam/x"},
        "problems": ["x.toml:3 streams.0: cannot read 'http://u:***@h/v?token=***'"],
        "n": 3,
        "ok": False,
        "none": None,
        "pair": ["rtsp://a:***@h", 1.5],
    }
    assert "pw" not in json.dumps(redact_json(doc))


def _record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("edge.sources.video", logging.WARNING, __file__, 1, msg, args, info)


def test_a_record_is_redacted_argument_by_argument_so_formatters_that_unpack_args_work() -> None:
    r = scrub_record(_record('%s - "%s %s" %d', "1.2.3.4", "GET", "/x?token=abc", 200))
    assert r.args == ("1.2.3.4", "GET", "/x?token=***", 200)  # uvicorn's access formatter
    assert r.getMessage() == '1.2.3.4 - "GET /x?token=***" 200'
    r = scrub_record(_record("%s: cannot open", "rtsp://admin:pw@cam/x"))
    assert r.getMessage() == "rtsp://admin:***@cam/x: cannot open"
    r = scrub_record(_record("opening rtsp://admin:pw@cam/x (%d)", 3))  # in the format itself
    assert r.getMessage() == "opening rtsp://admin:***@cam/x (3)"
    r = scrub_record(_record("%d", "rtsp://admin:pw@cam/x"))  # arguments that do not fit
    assert "pw@" not in r.getMessage() and "admin:***@cam" in r.getMessage()
    r = scrub_record(_record(ValueError("rtsp://admin:pw@cam/x")))  # an exception as msg
    assert r.getMessage() == "rtsp://admin:***@cam/x"
    plain = _record("%s frames", 3)
    assert scrub_record(plain).args == (3,) and plain.msg == "%s frames"  # nothing to hide


def _raise(text: str) -> BaseException:
    try:
        raise ConnectionError(text)
    except ConnectionError as exc:
        return exc


def test_exception_text_extra_fields_and_json_log_lines_are_redacted() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s %(camera)s"))
    r = _record("capture died", exc=_raise("rtsp://admin:pw@cam/x refused"))
    r.camera = "http://u:pw@door/v.mjpg"
    handler.handle(r)
    text = out.getvalue()
    assert "pw@" not in text
    assert "http://u:***@door/v.mjpg" in text and "ConnectionError: rtsp://admin:***@cam" in text
    r = scrub_record(_record("capture died", exc=_raise("rtsp://admin:pw@cam/x refused")))
    r.camera = "rtsp://a:pw@h"
    doc = json.loads(JsonFormatter().format(r))
    assert "pw@" not in json.dumps(doc) and "rtsp://admin:***@cam" in doc["exc"]
    # JsonFormatter redacts on its own too (a handler without the filter)
    r = _record("%s", "rtsp://admin:pw@cam/x", exc=_raise("rtsp://admin:pw@cam/x"))
    assert "pw@" not in JsonFormatter().format(r)


_PROCESS = r"""
import logging, sys, threading
from edge import redact
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
redact.install()
late = logging.StreamHandler(sys.stderr)  # a library's own handler, added later (uvicorn)
late.setFormatter(logging.Formatter("late %(message)s"))
lib = logging.getLogger("lib")
lib.addHandler(late)
lib.propagate = False
lib.info("GET /api?token=%s", "tok-1")
logging.getLogger("edge").warning("%s: cannot open", "rtsp://admin:pw-2@cam/x")
try:
    raise OSError("rtsp://admin:pw-3@cam/x")
except OSError:
    logging.getLogger("edge").exception("capture failed")
def crash():
    raise ValueError("http://u:pw-4@door/v")
t = threading.Thread(target=crash, name="capture")
t.start(); t.join()
raise RuntimeError("rtsp://admin:pw-5@cam/x")  # uncaught: sys.excepthook
"""


def test_install_redacts_late_handlers_tracebacks_and_uncaught_exceptions() -> None:
    r = subprocess.run([sys.executable, "-c", _PROCESS], capture_output=True, text=True,
                       timeout=60, cwd=REPO)  # fmt: skip
    assert r.returncode == 1
    for secret in ("tok-1", "pw-2", "pw-3", "pw-4", "pw-5"):
        assert secret not in r.stderr, r.stderr
    assert "late GET /api?token=***" in r.stderr
    assert "edge rtsp://admin:***@cam/x: cannot open" in r.stderr
    assert "OSError: rtsp://admin:***@cam/x" in r.stderr  # the logged traceback
    assert "Exception in thread capture" in r.stderr and "http://u:***@door/v" in r.stderr
    assert "RuntimeError: rtsp://admin:***@cam/x" in r.stderr  # the uncaught one


_NATIVE = r"""
import os, sys
from edge.native_stderr import NativeStderrRedactor
with NativeStderrRedactor():
    print("python rtsp://admin:pw-1@cam/x", file=sys.stderr, flush=True)
    os.write(2, b"[ WARN] trying capture filename='rtsp://adm")  # C writes in pieces
    os.write(2, b"in:pw-2@cam/x' ...\n\xff binary ")
    os.write(2, b"last line without newline http://u:pw-3@h/v")
print("after", file=sys.stderr)
"""


def test_native_stderr_goes_through_the_redactor_line_by_line_and_is_drained() -> None:
    r = subprocess.run([sys.executable, "-c", _NATIVE], capture_output=True, timeout=60,
                       cwd=REPO)  # fmt: skip
    err = r.stderr
    assert r.returncode == 0 and b"pw-" not in err, err
    assert b"python rtsp://admin:***@cam/x\n" in err
    assert b"filename='rtsp://admin:***@cam/x' ...\n" in err  # a line split across writes
    assert b"\xff binary " in err  # bytes that are not UTF-8 pass unchanged
    assert err.endswith(b"http://u:***@h/v" + b"after\n")  # drained before fd 2 came back


@pytest.mark.parametrize(
    ("env", "found"),
    [({}, []), ({"OPENCV_VIDEOIO_DEBUG": "1"}, ["OPENCV_VIDEOIO_DEBUG"]),
     ({"OPENCV_FFMPEG_DEBUG": "true", "OPENCV_LOG_LEVEL": "debug"},
      ["OPENCV_FFMPEG_DEBUG", "OPENCV_LOG_LEVEL"]),
     ({"OPENCV_VIDEOIO_DEBUG": "0", "OPENCV_LOG_LEVEL": "ERROR"}, [])],
)  # fmt: skip
def test_native_debug_variables(env: dict[str, str], found: list[str]) -> None:
    assert native_debug_vars(env) == found


def test_a_live_source_and_a_stream_describe_themselves_without_the_password() -> None:
    url = "rtsp://admin:pw@cam:554/live?token=t"
    src = LiveVideoSource(url, threading.Event())
    assert src.target == url  # what OpenCV opens
    assert src.name == "rtsp://admin:***@cam:554/live?token=***"
    assert LiveVideoSource(0, threading.Event()).name == "camera 0"
    s = StreamConfig.model_validate({"name": "cam", "source": url, "detectors": ["face"]})
    assert s.source == url and s.display_source == "rtsp://admin:***@cam:554/live?token=***"
    with pytest.raises(ValueError, match=r"admin:\*\*\*@cam") as err:
        StreamConfig.model_validate(
            {"name": "c", "source": "x://admin:pw@cam/a.b", "detectors": ["f"]}
        )
    assert "pw@" not in str(err.value)


def test_telemetry_stream_error_is_redacted() -> None:
    st = StreamStats("video", True, 0.0, 0.0, error="capture failed: rtsp://admin:pw@cam/x")
    assert stream_v1(st).error == "capture failed: rtsp://admin:***@cam/x"
