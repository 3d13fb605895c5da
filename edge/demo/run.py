"""Start a broker, the hub on SQLite and a daemon on the sample media (or your camera and
microphone); print the dashboard URL; stop all of it on Ctrl-C (or after ``duration``)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edge.demo.broker import Broker, free_port, start_broker
from edge.demo.browser import open_dashboard
from edge.demo.console import EventConsole
from edge.demo.media import DOOR, VIDEO, WALKWAY, WAV, build_video
from edge.demo.preflight import (
    DEVICE_DIR,
    HUB_DB,
    check_device_free,
    check_ports,
    lock_workdir,
    reset_state,
)
from edge.errors import EdgeError

log = logging.getLogger(__name__)

DEVICE_ID = "demo-device"
CAMERA_FPS = 5


def _points(points: tuple[tuple[float, float], ...]) -> str:
    return "[" + ", ".join(f"[{x}, {y}]" for x, y in points) + "]"


@dataclass
class DemoOptions:
    workdir: Path
    http_port: int = 8080  # 0: a free one
    mqtt_port: int | None = None  # None or 0: a free one
    camera: str | None = None  # a camera index or URL instead of the sample video
    mic: bool = False  # the default microphone instead of the sample WAV
    duration: float | None = None  # seconds; None: until Ctrl-C
    broker: str = "auto"  # auto | mosquitto | amqtt
    quiet: bool = False
    keep: bool = False  # keep the hub's database and the device's outbox from the last run
    no_browser: bool = False


def device_config(opts: DemoOptions, video: Path, broker: Broker, health_port: int) -> str:
    """The daemon's config for the demo, as TOML text."""
    cam = opts.camera if opts.camera is not None else str(video)
    cam_file = opts.camera is None
    mic = "mic" if opts.mic else str(WAV)
    lines = [
        f'device_id = "{DEVICE_ID}"',
        f'data_dir = "{(opts.workdir / DEVICE_DIR).as_posix()}"',
        "",
        "[[streams]]",
        'name = "lobby-cam"',
        f"source = {json.dumps(cam)}",
        'detectors = ["face", "objects"]',
        *(["loop = true", "realtime = true"] if cam_file else []),
        # nanodet-m costs ~30 ms a frame on one thread: at 5 frames/s, not the video's 15,
        # the daemon takes 0.21 of a core (0.63 at 15), so the demo stays responsive on 2
        f"fps_limit = {CAMERA_FPS}",
        "",
        "[[streams.zones]]",
        'name = "walkway"',
        f"points = {_points(WALKWAY)}",
        "",
        "[[streams.lines]]",
        'name = "door"',
        f"start = {_points(DOOR[:1])[1:-1]}",
        f"end = {_points(DOOR[1:])[1:-1]}",
        "",
        "[[streams]]",
        'name = "lobby-mic"',
        f"source = {json.dumps(mic)}",
        'detectors = ["speech", "wakeword"]',
        *(["loop = true", "realtime = true"] if not opts.mic else []),
        "",
        "[detectors.face]",
        'model = "blazeface-short"',
        "threshold = 0.65",
        "",
        "[detectors.objects]",
        'model = "nanodet-m"',
        "threads = 1",
        "threshold = 0.3",
        'labels = ["person", "cat", "dog"]',  # not the coffee cup and table it stands on
        "label_thresholds = { dog = 0.45 }",  # the cat scores up to 0.33 as a dog too
        "",
        "[detectors.speech]",
        'model = "silero-vad"',
        "",
        "[detectors.wakeword]",
        'model = "okay-nabu"',
        "",
        "[tracking]",
        "update_interval_s = 2.0",
        "",
        "[[sinks]]",
        'type = "mqtt"',
        "",
        "[health]",
        f"port = {health_port}",
        "",
        "[sync]",
        f"port = {broker.port}",
        f'protocol = "{broker.protocol}"',
        "telemetry_interval_s = 2.0",
        "",
    ]
    return "\n".join(lines)


class _Procs:
    def __init__(self) -> None:
        self.items: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], log_file: IO[bytes]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=log_file, start_new_session=True)  # noqa: S603  our argv
        self.items.append((name, proc))
        return proc

    def dead(self) -> str | None:
        for name, proc in self.items:
            if proc.poll() is not None:
                return f"{name} exited ({proc.returncode})"
        return None

    def stop(self) -> None:
        for _name, proc in reversed(self.items):  # the daemon first: it ends its events
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310  our own 127.0.0.1 hub
        return json.loads(r.read())


def _wait_hub(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EdgeError("edge-hub exited during start-up; see its log")
        try:
            if _get(url + "/healthz").get("mqtt_connected"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise EdgeError(f"edge-hub did not come up at {url} within {timeout:.0f} s")


def _summary(url: str, printed: int) -> str:
    """The device's state as the hub sees it, and how many events the console printed
    (the hub's label counts would count every start and update step too)."""
    try:
        devices = _get(url + "/api/devices")["devices"]
    except (OSError, ValueError, KeyError, TypeError):
        return "hub not answering"
    dev = next(
        (d for d in devices if isinstance(d, dict) and d.get("device_id") == DEVICE_ID), None
    )
    state = str(dev.get("state", "?")) if dev else "not seen yet"
    return f"{DEVICE_ID} {state}; {printed} event{'' if printed == 1 else 's'} so far"


def run_demo(opts: DemoOptions) -> int:
    """Run the demo until Ctrl-C or ``duration``. Status lines go to stderr, one line per
    event (``edge.demo.console``) to stdout."""
    work = opts.workdir
    lock = lock_workdir(work)  # before anything is written there: the logs, the state
    try:
        return _run_locked(opts, work)
    finally:
        lock.release()


def _run_locked(opts: DemoOptions, work: Path) -> int:
    def say(msg: str) -> None:
        if not opts.quiet:
            print(msg, file=sys.stderr, flush=True)

    ports = {"--http-port": opts.http_port, "--mqtt-port": opts.mqtt_port or 0}
    check_ports({flag: p for flag, p in ports.items() if p != 0})
    check_device_free(work)
    http_port = opts.http_port or free_port()
    if opts.keep:
        say(f"state: kept from earlier runs in {work} (--keep)")
    else:
        reset_state(work)
        say("state: fresh: the hub's database and the device's outbox start empty "
            "(--keep keeps them between runs)")  # fmt: skip
    (work / "logs").mkdir(parents=True, exist_ok=True)
    video = build_video(work / VIDEO) if opts.camera is None else work / VIDEO
    logs = {n: (work / "logs" / f"{n}.log").open("wb") for n in ("broker", "hub", "daemon")}
    procs = _Procs()
    broker: Broker | None = None
    console: EventConsole | None = None
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker = start_broker(work, logs["broker"], opts.broker, opts.mqtt_port or None)
        say(f"broker: {broker.kind} on 127.0.0.1:{broker.port} (MQTT {broker.protocol})")
        url = f"http://127.0.0.1:{http_port}"
        hub = procs.start(
            "hub",
            [sys.executable, "-m", "cloud_sync.hub.cli", "serve",
             "--db", f"sqlite:///{(work / HUB_DB).as_posix()}",
             "--mqtt-port", str(broker.port), "--mqtt-protocol", broker.protocol,
             "--http-port", str(http_port), "--client-id", "edge-hub-demo"],
            logs["hub"],
        )  # fmt: skip
        _wait_hub(url, hub)
        console = EventConsole(url, sys.stdout, device=DEVICE_ID)
        console.start()
        config = work / "device.toml"
        config.write_text(device_config(opts, video, broker, free_port()))
        procs.start(
            "daemon", [sys.executable, "-m", "edge.cli.main", "run", "--config", str(config)],
            logs["daemon"],
        )  # fmt: skip
        say(f"dashboard: {url}/   (API: {url}/api/events, live feed: {url}/api/stream)")
        if open_dashboard(url + "/", os.environ, no_browser=opts.no_browser):
            say("opened the dashboard in your browser (--no-browser: don't)")
        say(f"logs: {work / 'logs'}; Ctrl-C stops everything")
        t0 = time.monotonic()
        next_report = t0 + 5
        while not stopping:
            if opts.duration is not None and time.monotonic() - t0 >= opts.duration:
                break
            why = procs.dead() or (None if console.alive else "the event console failed")
            if why is not None or (broker.proc.poll() is not None):
                why = why or f"broker exited ({broker.proc.returncode})"
                raise EdgeError(f"demo stopped: {why}; see {work / 'logs'}")
            if time.monotonic() >= next_report:
                say(_summary(url, console.printed))
                next_report += 30
            time.sleep(0.2)
        say("stopping: daemon, hub, broker")
        return 0
    finally:
        if console is not None:
            console.stop()
        procs.stop()
        if broker is not None:
            broker.stop()
        for f in logs.values():
            f.close()
        for s, h in old.items():
            signal.signal(s, h)
