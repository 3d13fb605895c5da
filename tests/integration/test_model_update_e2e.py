"""A signed model update end to end, the way a user does it, with no Python of their own
(docs/hub.md, "Model updates, step by step"): ``edge-convert`` the real ``ppocr-det`` for
``x86-64-avx2`` (INT8, ~10 s), ``edge-hub keys generate``, the public key in the device
config, ``edge-hub sign-model``, the file served from a 127.0.0.1 HTTP server,
``edge-hub send-model --wait`` through a real ``edge-hub serve`` and a private mosquitto to
a real ``edge run``; then the device runs the new model, says so in telemetry and events,
keeps it across a restart, and refuses the same update replayed. And key rotation: a device
that trusts ``[old, new]`` takes a new-key update; once the owner has dropped the old key,
an old-key update is refused and a new-key one still taken.

Ground truth: the video alternates 2 s of scikit-image's ``astronaut`` with lines of text
drawn on it (``tests/fixtures/text_scene.py``; PP-OCR finds every line) and 2 s of the
plain photo (PP-OCR finds nothing), so every loop starts new text events with whatever
model runs at that moment. The converted model's sha256 is the bundle's own.

The device side's checks (counter, expiry, key lists, the durable ``<config>.ota.json``
record and ``source``/``counter`` in telemetry) follow OTA_SPEC (issue 11, items 2 and 4).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge.models.resolve import ResolvedModel
from tests.fixtures.convert_scenes import write_scenes
from tests.fixtures.text_scene import astronaut_scene, photo
from tests.support.edge_run import EdgeRun

from .hub_support import HubProc, free_port, mosquitto, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEVICE = "ota-cam"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HUB_CLI = [sys.executable, "-m", "cloud_sync.hub.cli"]


def cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``edge-hub ARGV`` as a user runs it: a process, its exit code, stdout and stderr."""
    return subprocess.run(
        [*HUB_CLI, *argv], capture_output=True, text=True, env=ENV, timeout=timeout, check=False
    )


@dataclass(frozen=True)
class Converted:
    bundle: Path
    manifest: dict[str, Any]
    zoo: ResolvedModel  # the FP32 model the device starts with


@pytest.fixture(scope="module")
def converted(
    zoo_model: Callable[[str], ResolvedModel], tmp_path_factory: pytest.TempPathFactory
) -> Converted:
    """``edge-convert ppocr-det --profile x86-64-avx2``: one calibration and one evaluation
    image (the gate still runs: box F1 ≥ 0.95 against FP32)."""
    fp32 = zoo_model("ppocr-det")
    root = tmp_path_factory.mktemp("convert")
    calib = write_scenes(root / "calib", ("coffee",), 1, seed=1)[0].parent
    evals = write_scenes(root / "eval", ("astronaut",), 1, seed=2)[0].parent
    out = root / "bundle"
    proc = subprocess.run(
        [sys.executable, "-m", "converters.cli", "ppocr-det", "--profile", "x86-64-avx2",
         "--calibration", str(calib), "--eval", str(evals), "-o", str(out), "--json"],
        capture_output=True, text=True, env=ENV, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sha256"] != fp32.manifest.sha256
    return Converted(out, manifest, fp32)


def text_video(path: Path) -> Path:
    """5 fps, 512×512: 10 frames with text, 10 without; looped in real time by the daemon."""
    with_text, _truth = astronaut_scene()
    plain = photo("astronaut")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5.0, (512, 512))
    assert writer.isOpened()
    for i in range(20):
        writer.write(with_text if i < 10 else plain)
    writer.release()
    return path


def keys(folder: Path, name: str) -> tuple[Path, str]:
    proc = cli("keys", "generate", "--out", str(folder), "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return Path(doc["private_key"]), str(doc["public_key"])


def device_config(tmp: Path, broker: int, model_public_key: str) -> str:
    """``model_public_key``: the TOML value as the owner writes it (a string or a list)."""
    return f"""\
device_id = "{DEVICE}"
data_dir = "{tmp / "data"}"

[[streams]]
name = "wall"
source = "{text_video(tmp / "wall.avi")}"
detectors = ["text"]
loop = true
realtime = true

[detectors.text]
model = "ppocr-det"

[[sinks]]
type = "mqtt"

[health]
enabled = false

[sync]
port = {broker}
reconnect_min_s = 0.1
reconnect_max_s = 0.5
telemetry_interval_s = 1.0
model_public_key = {model_public_key}
"""


class Files:
    """A plain HTTP server on 127.0.0.1 for the model files a device downloads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def offer(self, model: Path) -> str:
        shutil.copyfile(model, self.folder / model.name)
        return f"http://127.0.0.1:{self.server.server_address[1]}/{model.name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class System:
    tmp: Path
    hub: HubProc
    files: Files
    cfg: Path
    daemon: EdgeRun | None = None
    starts: int = 0

    def start_daemon(self) -> None:
        self.starts += 1
        self.daemon = EdgeRun(self.cfg, self.tmp / f"daemon-{self.starts}.log")

    def stop_daemon(self) -> None:
        assert self.daemon is not None
        assert self.daemon.terminate(20) == 0, self.daemon.log()[-3000:]
        self.daemon = None

    def restart_daemon(self) -> None:
        """Stop, start again, and wait until the hub sees the new boot online."""
        boot = self.device()["boot_id"]
        self.stop_daemon()
        self.start_daemon()
        self.wait(lambda: self.device()["boot_id"] != boot and self.device()["state"] == "online",
                  60)  # fmt: skip

    def wait(self, pred: Callable[[], bool], timeout: float) -> None:
        """``wait_for``, failing at once (with the daemon's log) if ``edge run`` exited."""

        def check() -> bool:
            if self.daemon is not None and self.daemon.proc.poll() is not None:
                raise AssertionError(
                    f"edge run exited {self.daemon.proc.returncode}: {self.daemon.log()[-3000:]}"
                )
            return pred()

        wait_for(check, timeout)

    def device(self) -> dict[str, Any]:
        return dict(self.hub.get(f"/api/devices/{DEVICE}"))

    def text_detector(self) -> dict[str, Any] | None:
        """The ``text`` detector in the device's last telemetry (None before the first)."""
        try:
            tel = self.device().get("telemetry") or {}
        except OSError:
            return None
        det = tel.get("detectors", {}).get("text")
        return dict(det) if det else None

    def runs(self, sha256: str, source: str | None = None) -> bool:
        """The last telemetry says detector ``text`` runs ``sha256`` (from ``source``)."""
        det = self.text_detector()
        if not det or det["model"]["sha256"] != sha256[:12]:
            return False
        return source is None or det.get("source") == source

    def events(self) -> list[dict[str, Any]]:
        page = self.hub.get(f"/api/events?device={DEVICE}&label=text&order=asc&limit=1000")
        return list(page["events"])

    def new_events_name(self, name: str, sha256: str, since: str) -> bool:
        return any(
            e["phase"] == "start"
            and e["ts"] > since
            and e["model"]["name"] == name
            and sha256.startswith(e["model"]["sha256"])
            for e in self.events()
        )

    def sign(self, bundle: Path | str, key: Path, counter: int, out: Path) -> Path:
        proc = cli("sign-model", str(bundle), "--key", str(key), "--detector", "text",
                   "--counter", str(counter), "--expires-in", "1h", "--out", str(out))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return out

    def send(self, signed: Path, url: str) -> subprocess.CompletedProcess[str]:
        return cli("send-model", str(signed), "--url", url, "--device", DEVICE,
                   "--hub", self.hub.url(""), "--wait", "--timeout", "90", "--json",
                   timeout=150)  # fmt: skip


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Callable[[str], System]]:
    """``system(model_public_key_toml)``: broker, hub, file server, config; daemon started."""
    made: list[System] = []
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1", tmp_path / "hub.log")
        files = Files(tmp_path / "www")

        def make(model_public_key: str) -> System:
            cfg = tmp_path / "edge.toml"
            cfg.write_text(device_config(tmp_path, port, model_public_key))
            s = System(tmp_path, hub, files, cfg)
            s.start_daemon()
            made.append(s)
            return s

        try:
            yield make
        finally:
            for s in made:
                if s.daemon is not None:
                    s.daemon.kill()
            files.close()
            hub.stop()


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))


def test_convert_sign_send_run(
    converted: Converted, system: Callable[[str], System], tmp_path: Path
) -> None:
    priv, pub = keys(tmp_path / "keys", "fleet")
    s = system(f'"{pub}"')
    fp32_sha = converted.zoo.manifest.sha256
    s.wait(lambda: s.runs(fp32_sha), 60)
    s.wait(lambda: s.new_events_name("ppocr-det", fp32_sha, ""), 60)

    # sign the edge-convert bundle, serve its file, send it and wait for the device's answer
    new_sha = converted.manifest["sha256"]
    counter = int(time.time())
    signed = s.sign(converted.bundle, priv, counter, tmp_path / "signed.json")
    url = s.files.offer(converted.bundle / converted.manifest["file"])
    since = _iso_now()
    proc = s.send(signed, url)
    assert proc.returncode == 0, proc.stderr
    (reply,) = json.loads(proc.stdout)["commands"]
    assert reply["ok"] is True and reply["result"]["sha256"] == new_sha, reply

    # the device runs it: telemetry, then new events, name the converted model
    s.wait(lambda: s.runs(new_sha), 30)
    s.wait(lambda: s.new_events_name(converted.manifest["name"], new_sha, since), 60)
    det = s.text_detector()
    assert det is not None and det["model"]["name"] == converted.manifest["name"]
    # ... and says where it came from (OTA_SPEC item 4: source, counter)
    assert det.get("source") == "ota" and det.get("counter") == counter, det
    record = json.loads((s.cfg.parent / "edge.ota.json").read_text())
    assert record["counters"]["text"] == counter
    assert record["detectors"]["text"]["sha256"] == new_sha
    assert record["detectors"]["text"]["config_model"] == "ppocr-det"

    # the same signed update again (a replay, new command id) is refused: --wait exits 1
    replay = s.send(signed, url)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "refused model" in replay.stderr and "counter" in replay.stderr.lower()
    assert s.runs(new_sha)

    # a restart keeps the update (the config still names ppocr-det)
    s.restart_daemon()
    since = _iso_now()
    s.wait(lambda: s.new_events_name(converted.manifest["name"], new_sha, since), 60)
    s.wait(lambda: s.runs(new_sha, source="ota"), 30)


def test_key_rotation(
    converted: Converted, system: Callable[[str], System], tmp_path: Path
) -> None:
    old_priv, old_pub = keys(tmp_path / "keys", "fleet-2025")
    new_priv, new_pub = keys(tmp_path / "keys", "fleet-2026")
    # 1. the owner adds the new key beside the old one, locally
    s = system(f'["{old_pub}", "{new_pub}"]')
    fp32 = converted.zoo
    s.wait(lambda: s.runs(fp32.manifest.sha256), 60)

    # 2. an update signed with the new key is taken
    t = int(time.time())
    new_sha = converted.manifest["sha256"]
    url_conv = s.files.offer(converted.bundle / converted.manifest["file"])
    proc = s.send(s.sign(converted.bundle, new_priv, t, tmp_path / "a.json"), url_conv)
    assert proc.returncode == 0, proc.stderr
    s.wait(lambda: s.runs(new_sha), 30)

    # 3. the owner removes the old key (locally) and restarts: the update stays, since it
    #    was signed with the key that is still trusted
    s.cfg.write_text(s.cfg.read_text().replace(f'["{old_pub}", "{new_pub}"]', f'["{new_pub}"]'))
    s.restart_daemon()
    s.wait(lambda: s.runs(new_sha, source="ota"), 30)

    # 4. an update signed with the old key is refused now, however new its counter ...
    url_fp32 = s.files.offer(fp32.path)
    old_signed = s.sign("ppocr-det", old_priv, t + 10, tmp_path / "b.json")
    refused = s.send(old_signed, url_fp32)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused model" in refused.stderr and "signature" in refused.stderr.lower()
    assert s.runs(new_sha)

    # 5. ... and the same model signed with the new key is taken
    proc = s.send(s.sign("ppocr-det", new_priv, t + 10, tmp_path / "c.json"), url_fp32)
    assert proc.returncode == 0, proc.stderr
    s.wait(lambda: s.runs(fp32.manifest.sha256), 30)
