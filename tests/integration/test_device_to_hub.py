"""The whole path with real processes: `edge run` (face video, outbox, MQTT) → a private
mosquitto → `edge-hub serve` on SQLite; and commands sent through the hub's API back to
the daemon (snapshot, a config that fails validation, a valid config, a signed model
update, a model whose signature is wrong). Ground truth: the face video has faces in
frames 30–89 and 150–209 of 240 (tests/fixtures/video.py), looped in real time."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cloud_sync import signing
from edge.models import zoo
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import MQTT_SINK, device_toml

from .hub_support import HubProc, free_port, mosquitto, wait_for

pytestmark = pytest.mark.slow
DEVICE = "door-1"


def device_config(tmp: Path, video: Path, broker: int, pubkey: str, threshold: float) -> str:
    sync = f'[sync]\nport = {broker}\ntelemetry_interval_s = 1.0\nmodel_public_key = "{pubkey}"\n'
    return device_toml(
        tmp / "data", video, health_port=0, sinks=MQTT_SINK, sync=sync, device_id=DEVICE,
        stream="door", threshold=threshold,
    )  # fmt: skip


@pytest.fixture
def system(tmp_path: Path) -> Iterator[dict[str, Any]]:
    video, _ = face_video(tmp_path / "door.avi", 240, DEFAULT_SPANS)
    key, pub = signing.generate()
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1", tmp_path / "hub.log")
        cfg = tmp_path / "device.toml"
        cfg.write_text(device_config(tmp_path, video, port, pub, 0.6))
        log = (tmp_path / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge.cli.main", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            yield {"hub": hub, "daemon": daemon, "cfg": cfg, "key": key, "pub": pub,
                   "video": video, "port": port, "tmp": tmp_path}  # fmt: skip
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            log.close()
            hub.stop()


def command(hub: HubProc, name: str, args: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    req = urllib.request.Request(
        hub.url(f"/api/devices/{DEVICE}/commands"),
        data=json.dumps({"name": name, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202
        cmd_id = json.loads(r.read())["id"]

    def replied() -> dict[str, Any] | None:
        for c in hub.get(f"/api/devices/{DEVICE}/commands")["commands"]:
            if c["id"] == cmd_id and c["replied_at"] is not None:
                return dict(c)
        return None

    return dict(wait_for(replied, timeout))


def face_events(hub: HubProc) -> list[dict[str, Any]]:
    page = hub.get(f"/api/events?device={DEVICE}&label=face&order=asc&limit=1000")
    return list(page["events"])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_events_reach_the_hub_and_commands_come_back(system: dict[str, Any]) -> None:
    hub: HubProc = system["hub"]
    # 1. face events arrive, once each, in seq order, with no gaps
    wait_for(lambda: len({e["track_id"] for e in face_events(hub)}) >= 2, 40)
    events = face_events(hub)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(e["id"] for e in events)) == len(events)
    assert all(e["model"]["name"] == "blazeface-short" for e in events)
    assert hub.get("/api/gaps") == {"gaps": []}
    assert hub.get(f"/api/devices/{DEVICE}")["state"] == "online"

    # 2. snapshot: the current frame as a JPEG of the video's size
    snap = command(hub, "snapshot", {})
    assert snap["ok"], snap
    jpeg = base64.b64decode(snap["reply"]["result"]["jpeg_b64"])
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (480, 640, 3)

    # 3. a config that fails validation changes nothing and says why; so does one that
    # changes a key a remote config may not (the allow-list, issue 11)
    before = system["cfg"].read_text()
    bad = command(hub, "config", {"toml": before.replace("threshold = 0.6", "threshold = 5.0")})
    assert bad["ok"] is False and "detectors.face.threshold" in bad["reply"]["message"], bad
    assert "less than 1" in bad["reply"]["message"]
    off_list = command(hub, "config", {"toml": before.replace("[[streams]]", "[[streamz]]")})
    assert off_list["ok"] is False and "streamz[0].name" in off_list["reply"]["message"]
    assert system["cfg"].read_text() == before
    assert system["daemon"].poll() is None

    # 4. a valid config is applied and persisted
    good_text = before.replace("threshold = 0.6", "threshold = 0.7")
    good = command(hub, "config", {"toml": good_text})
    assert good["ok"], good
    assert system["cfg"].read_text() == good_text
    n = len(face_events(hub))
    wait_for(lambda: len(face_events(hub)) > n, 30)  # still detecting after the reload

    # 5. a signed model update (blazeface-full, served over HTTP) is swapped in
    full = zoo.get("blazeface-full")
    src = zoo.pull(full)
    serve_dir = system["tmp"] / "serve"
    serve_dir.mkdir()
    (serve_dir / full.file).write_bytes(src.read_bytes())
    handler = functools.partial(_Quiet, directory=str(serve_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        manifest = json.dumps(full.model_dump(mode="json", exclude_none=True))
        url = f"http://127.0.0.1:{server.server_address[1]}/{full.file}"
        args = {"detector": "face", "url": url, "sha256": full.sha256, "manifest": manifest}
        forged = command(
            hub,
            "model",
            {**args, "signature": signing.sign(signing.generate()[0], manifest.encode())},
        )
        assert forged["ok"] is False and "signature" in forged["reply"]["message"].lower()
        swapped = command(
            hub, "model", {**args, "signature": signing.sign(system["key"], manifest.encode())}
        )
        assert swapped["ok"], swapped
        t_swap = time.time()

        def full_range_event() -> bool:
            return any(
                e["model"]["name"] == "blazeface-full"
                and e["ts"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_swap - 1))
                for e in face_events(hub)
            )

        wait_for(full_range_event, 40)
    finally:
        server.shutdown()

    # 6. SIGTERM: clean shutdown, the hub shows the device stopped
    system["daemon"].send_signal(signal.SIGTERM)
    assert system["daemon"].wait(10) == 0
    wait_for(lambda: hub.get(f"/api/devices/{DEVICE}")["state"] == "stopped", 15)
    events = face_events(hub)
    starts = {e["track_id"] for e in events if e["phase"] == "start"}
    ends = {e["track_id"] for e in events if e["phase"] == "end"}
    assert starts <= ends  # every started face event was ended
