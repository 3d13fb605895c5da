"""`edge demo` as a new user runs it: a fresh home (models pulled on first use), a broker,
the hub and the daemon; face, speech and keyword events must reach the hub's API, and
Ctrl-C must stop every process. Once with mosquitto, once with no mosquitto on PATH."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge.demo.broker import free_port

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _labels(base: str) -> set[str]:
    try:
        page = _get(f"{base}/api/events?device=demo-device&limit=500")
    except OSError:
        return set()
    return {e["label"] for e in page["events"]}


def _run_demo(tmp_path: Path, env: dict[str, str]) -> tuple[str, set[str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    err = (tmp_path / "demo.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli.main", "demo", "--duration", "120",
         "--http-port", str(port), "--workdir", str(tmp_path / "work")],
        stdout=subprocess.DEVNULL, stderr=err, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        seen: set[str] = set()
        while time.monotonic() < deadline and not {"face", "speech", "okay nabu"} <= seen:
            assert proc.poll() is None, (tmp_path / "demo.err").read_text()
            seen = _labels(base)
            time.sleep(1)
        devices = _get(f"{base}/api/devices")["devices"]
        assert [d["state"] for d in devices if d["device_id"] == "demo-device"] == ["online"]
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    with pytest.raises(OSError):  # the hub is gone with it
        _get(f"{base}/healthz")
    return (tmp_path / "demo.err").read_text(), seen


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EDGEWISE_HOME": str(tmp_path / "home"), **extra}
    return env


def test_demo_delivers_face_speech_and_keyword_events(tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not on PATH (apt-get install mosquitto)")
    stderr, seen = _run_demo(tmp_path, _fresh_env(tmp_path))
    assert {"face", "speech", "okay nabu"} <= seen, (seen, stderr)
    assert "broker: mosquitto" in stderr
    assert "dashboard: http://127.0.0.1:" in stderr
    # the models came from the zoo into the fresh home
    assert (tmp_path / "home" / "models" / "blazeface-short").is_dir()


def test_demo_without_mosquitto_uses_the_python_broker(tmp_path: Path) -> None:
    pytest.importorskip("amqtt", reason="amqtt is the demo extra: pip install 'edgewise[demo]'")
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    path = os.pathsep.join(d for d in dirs if not (Path(d) / "mosquitto").exists())
    env = _fresh_env(tmp_path, PATH=path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    stderr, seen = _run_demo(tmp_path, env)
    assert "broker: amqtt" in stderr and "MQTT 3.1.1" in stderr
    assert {"face", "speech", "okay nabu"} <= seen, (seen, stderr)
