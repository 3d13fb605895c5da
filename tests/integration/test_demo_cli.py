"""`edge demo` as two users on one machine see it: a second demo on the first one's folder
or ports is refused at once with one line, and the first keeps running and healthy; each
run starts from empty state (or keeps it with ``--keep``, and says which); the console
prints events as events; a browser is opened only at a desktop.

No real browser runs here: ``BROWSER`` names a script that records the URL it was given
(``webbrowser`` runs ``$BROWSER`` before any browser it finds), so a call would show.
The models come from the machine's cache; tests/integration/test_demo.py covers a fresh
home and what reaches the hub in full.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.compat import tomllib
from edge.demo.broker import free_port
from tests.support import children

CLOCK = r"\d\d:\d\d:\d\d"
LINE = re.compile(
    rf"{CLOCK} (?:"
    r"[\w ]+ at lobby-(?:cam|mic) \((?:0|1)\.\d\d\) for \d+\.\d s"
    r"|\w+ (?:entered|left) walkway at lobby-cam"
    r"|\w+ crossed door \((?:in|out)\) at lobby-cam"
    r")"
)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test's environment without a desktop or CI, with a recording ``BROWSER``."""
    script = tmp / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {tmp / "browser.log"}\n')
    script.chmod(0o755)
    drop = {"DISPLAY", "WAYLAND_DISPLAY", "CI"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "BROWSER": str(script), **extra}


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli.main", "demo", *args]


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    work: Path
    url: str
    http_port: int
    mqtt_port: int
    out: Path
    err: Path

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines()


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text())
        if m:
            return m.group(1)
        assert proc.poll() is None, path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in {path} after {timeout} s: {path.read_text()}")


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo running for the module, on a workdir a stale earlier run left."""
    tmp = tmp_path_factory.mktemp("first")
    work = tmp / "work"
    (work / "device").mkdir(parents=True)
    (work / "device" / "outbox-from-last-run").write_text("stale")
    with sqlite3.connect(work / "hub.db") as db:
        db.execute("CREATE TABLE from_last_run (x)")
    port = free_port()
    out, err = tmp / "out", tmp / "err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = children.spawn(
            _demo("--duration", "120", "--http-port", str(port), "--workdir", str(work)),
            stdout=o, stderr=e, env=_env(tmp),
        )  # fmt: skip
    try:
        mqtt = int(_wait_for(err, r"broker: \w+ on 127\.0\.0\.1:(\d+)", proc, 30))
        _wait_for(err, r"(dashboard): ", proc, 30)
        yield Demo(proc, work, f"http://127.0.0.1:{port}", port, mqtt, out, err)
    finally:
        rc = children.stop(proc, signal.SIGINT, 30)  # what Ctrl-C sends
    assert rc == 0, err.read_text()


def _refused(tmp: Path, *args: str) -> str:
    """Run a second demo that must fail fast; its stderr."""
    t0 = time.monotonic()
    r = subprocess.run(
        _demo("--duration", "30", *args), capture_output=True, text=True,
        env=_env(tmp, DISPLAY=":99"), timeout=30,
    )  # fmt: skip
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert time.monotonic() - t0 < 15, "the refusal waited for something"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert not (tmp / "browser.log").exists()
    return lines[0]


def test_the_first_demo_started_from_empty_state(first: Demo) -> None:
    assert "state: fresh" in first.err.read_text()
    assert not (first.work / "device" / "outbox-from-last-run").exists()
    with sqlite3.connect(first.work / "hub.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "from_last_run" not in tables and tables, tables


def test_a_second_demo_on_the_same_workdir_is_refused(first: Demo, tmp_path: Path) -> None:
    log_before = (first.work / "logs" / "hub.log").stat().st_size
    line = _refused(tmp_path, "--workdir", str(first.work), "--http-port", "0")
    assert str(first.work) in line, line
    assert f"in use by another edge demo (PID {first.proc.pid})" in line, line
    assert "--workdir" in line, line
    assert (first.work / "logs" / "hub.log").stat().st_size >= log_before  # not truncated
    assert (first.work / "hub.db").is_file()  # not cleared under the first


def test_a_second_demo_on_the_same_http_port_is_refused(first: Demo, tmp_path: Path) -> None:
    line = _refused(tmp_path, "--workdir", str(tmp_path / "w"), "--http-port", str(first.http_port))
    assert f"127.0.0.1:{first.http_port} is in use" in line and "--http-port" in line, line
    assert not (tmp_path / "w" / "logs").exists()  # refused before anything started


def test_a_second_demo_on_the_same_mqtt_port_is_refused(first: Demo, tmp_path: Path) -> None:
    args = ("--workdir", str(tmp_path / "w"), "--http-port", "0")
    line = _refused(tmp_path, *args, "--mqtt-port", str(first.mqtt_port))
    assert f"127.0.0.1:{first.mqtt_port} is in use" in line and "--mqtt-port" in line, line


def test_the_first_demo_kept_running_and_prints_events_as_events(first: Demo) -> None:
    wanted = {
        "speech": re.compile(rf"^{CLOCK} speech at lobby-mic \(\d\.\d\d\) for \d+\.\d s$"),
        "door": re.compile(rf"^{CLOCK} person crossed door \(in\) at lobby-cam$"),
        "walkway": re.compile(rf"^{CLOCK} person entered walkway at lobby-cam$"),
    }
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = first.lines()
        if all(any(p.match(s) for s in lines) for p in wanted.values()):
            break
        assert first.proc.poll() is None, first.err.read_text()
        time.sleep(0.5)
    lines = first.lines()
    assert all(any(p.match(s) for s in lines) for p in wanted.values()), lines
    assert all(LINE.fullmatch(s) for s in lines), lines  # one shape, no start/update steps
    assert not any(re.search(r"\b(start|update|end)\b", s) for s in lines), lines
    health = _get(first.url + "/healthz")
    assert health.get("mqtt_connected"), health
    devices = _get(first.url + "/api/devices")["devices"]
    assert [d["state"] for d in devices if d["device_id"] == "demo-device"] == ["online"]
    daemon = tomllib.loads((first.work / "device.toml").read_text())["health"]["port"]
    assert _get(f"http://127.0.0.1:{daemon}/healthz")  # 200: a 503 would raise
    assert not (first.err.parent / "browser.log").exists(), "opened a browser with no display"


def test_keep_keeps_state_and_a_desktop_opens_the_dashboard(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with sqlite3.connect(work / "hub.db") as db:
        db.execute("CREATE TABLE from_last_run (x)")
    port = free_port()
    r = subprocess.run(
        _demo("--keep", "--duration", "1", "--http-port", str(port), "--workdir", str(work)),
        capture_output=True, text=True, env=_env(tmp_path, DISPLAY=":99"), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"state: kept from earlier runs in {work}" in r.stderr, r.stderr
    with sqlite3.connect(work / "hub.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "from_last_run" in tables, tables
    assert (tmp_path / "browser.log").read_text() == f"http://127.0.0.1:{port}/\n"
    assert "opened the dashboard in your browser" in r.stderr


def test_no_browser_and_ci_never_open_one(tmp_path: Path) -> None:
    for flags, extra in (((), {"CI": "true"}), (("--no-browser",), {})):
        r = subprocess.run(
            _demo(*flags, "--duration", "0", "--http-port", "0",
                  "--workdir", str(tmp_path / "work")),
            capture_output=True, text=True, env=_env(tmp_path, DISPLAY=":99", **extra),
            timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "opened the dashboard" not in r.stderr
    assert not (tmp_path / "browser.log").exists()
