"""Drive a real ``edge run`` process for the daemon's fault tests: a config on a looped
face video, the process with its log in a file, /healthz and /metrics over HTTP, and an
MQTT "hub" that sends commands and collects their replies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
EDGE = [sys.executable, "-m", "edge.cli.main"]


JSONL_SINK = '[[sinks]]\ntype = "jsonl"\npath = "events.jsonl"\n'
MQTT_SINK = '[[sinks]]\ntype = "mqtt"\n'


def sync_toml(port: int, **keys: float) -> str:
    """A ``[sync]`` section on a local broker that reconnects fast, plus ``keys``."""
    extra = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return f"[sync]\nport = {port}\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5\n{extra}"


def device_toml(
    data_dir: Path,
    video: Path,
    *,
    health_port: int | None,
    sinks: str = JSONL_SINK,
    sync: str = "",
    device_id: str = "fault-dev",
    stream: str = "cam",
    threshold: float = 0.6,
    stream_extra: str = "",
    extra: str = "",
    loop: bool = True,
) -> str:
    """The device config of the daemon tests: one stream looping ``video`` in real time
    through BlazeFace short (``loop`` False: read once, as fast as it decodes, so the run
    ends). ``health_port`` None: no listener (0: any free port); ``stream_extra`` goes
    into the stream's table, ``extra`` (more tables) at the end."""
    health = (
        f"[health]\nport = {health_port}\n"
        if health_port is not None
        else "[health]\nenabled = false\n"
    )
    return f"""\
device_id = "{device_id}"
data_dir = "{data_dir}"

[[streams]]
name = "{stream}"
source = "{video}"
detectors = ["face"]
{"loop = true" + chr(10) + "realtime = true" if loop else ""}
{stream_extra}
[detectors.face]
model = "blazeface-short"
threshold = {threshold}

{sinks}
{health}
{sync}{extra}"""


class EdgeRun:
    """``edge run --config CFG`` (or ``python -c PRELUDE`` then the same CLI), log to a file."""

    def __init__(
        self,
        cfg: Path,
        log: Path,
        *,
        prelude: str | None = None,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.log_path = log
        argv = ["run", "--config", str(cfg), *args]
        if prelude is None:
            cmd = [*EDGE, *argv]
        else:  # register a test sink at the boundary, then the real CLI
            code = (
                f"{prelude}\nimport sys\nfrom edge.cli.main import main\nsys.exit(main({argv!r}))"
            )
            cmd = [sys.executable, "-c", code]
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env={**os.environ, **(env or {})},
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM (stop capture, drain, flush) and wait for the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    code, body = get(port, "/healthz")
    return code, (json.loads(body) if body else {})


def sample(text: str, name: str, labels: str = "") -> float:
    """One sample of ``name`` in Prometheus text, read with the Prometheus parser (with
    exactly ``labels``, e.g. ``sink="jsonl"``, in any order; without: the first, whatever
    its labels); -1 if absent."""
    want = dict(re.findall(r'(\w+)="([^"]*)"', labels)) if labels else None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and (want is None or s.labels == want):
                return float(s.value)
    return -1.0


def metric(port: int, name: str, labels: str = "") -> float:
    """``sample`` of the daemon's /metrics on ``port``."""
    return sample(get(port, "/metrics")[1], name, labels)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Hub:
    """Sends ``…/cmd/<name>`` commands to one device and collects the replies by id."""

    def __init__(self, port: int, device_id: str, prefix: str = "edgewise/v1") -> None:
        self.prefix = f"{prefix}/{device_id}"
        self.replies: dict[str, dict[str, Any]] = {}
        self.reply_at: dict[str, float] = {}  # when each reply came (time.monotonic)
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-hub-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.statuses: list[dict[str, Any]] = []
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{self.prefix}/cmd/+/reply", 1), (f"{self.prefix}/status", 1)]
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("hub: no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        body = json.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/status"):
                self.statuses.append(body)
            else:
                self.replies[body["id"]] = body
                self.reply_at[body["id"]] = time.monotonic()

    def wait_online(self, timeout: float = 30.0, after: int = 0) -> None:
        """Until the device's connection (the ``after``-th status on) says ``online``; then a
        moment for its command subscription, which follows the status publish."""
        wait_for(
            lambda: any(s.get("state") == "online" for s in self.statuses[after:]),
            timeout,
            "the device online",
        )
        time.sleep(0.5)

    def command(self, name: str, args: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send a command and wait for its reply (AssertionError naming it if none comes)."""
        return self.wait_reply(self.send(name, args), timeout)

    def send(self, name: str, args: dict[str, Any]) -> str:
        """Send a command without waiting; its request id (``wait_reply``)."""
        req = f"req-{time.monotonic_ns()}"
        payload = json.dumps({"v": 1, "id": req, "args": args})
        self.client.publish(f"{self.prefix}/cmd/{name}", payload, qos=1)
        return req

    def wait_reply(self, req: str, timeout: float = 30.0) -> dict[str, Any]:
        wait_for(lambda: req in self.replies, timeout, f"the reply to {req}")
        return self.replies[req]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
