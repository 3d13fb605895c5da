"""Cloud commands against a small in-memory DeviceControl and a local HTTP server.

Each hostile command must be refused with a reason and leave the device state unchanged.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cloud_sync import signing
from cloud_sync.commands import CommandHandler, CommandWorker
from edge.compat import tomllib
from edge.errors import ConfigError, ModelError
from edge.stats import DetectorStats, DeviceStats
from tests.support.ota import update_manifest

MODEL_BYTES = b"\x08\x01model-weights" * 100
SHA = hashlib.sha256(MODEL_BYTES).hexdigest()


class Device:
    """A DeviceControl with visible state: the applied config and the loaded model bundle."""

    def __init__(self) -> None:
        self.config = "device_id = 'cam1'\n"
        self.model: Path | None = None
        self.fail_load = False

    def apply_config(self, text: str) -> None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {exc}") from None
        if not isinstance(data.get("device_id"), str):
            raise ConfigError("config: device_id: must be a string")
        self.config = text

    def swap_model(self, detector: str, bundle: Path) -> dict[str, Any]:
        manifest = json.loads((bundle / "manifest.json").read_text())
        if self.fail_load:
            raise ModelError(f"{bundle}: the model failed its first inference; rolled back")
        assert (bundle / manifest["file"]).read_bytes() == MODEL_BYTES
        self.model = bundle
        return {"detector": detector, "model": manifest["name"]}

    def snapshot(self, stream: str | None, max_bytes: int) -> bytes:
        return b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9"

    def stats(self) -> DeviceStats:
        faces = DetectorStats(model="face", version="1", sha256="0" * 12)
        return DeviceStats(
            device_id="dev1", boot_id="0" * 8, uptime_s=0.0, detectors={"faces": faces}
        )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL_BYTES)))
            self.end_headers()
            try:
                for b in MODEL_BYTES[:5]:  # trickle: each byte well inside the socket timeout
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.4)
            except OSError:
                pass  # the device cut the connection at its deadline: what the tests want
            return
        body = {"/good": MODEL_BYTES, "/garbage": b"<html>not a model</html>"}.get(self.path)
        if self.path == "/huge":
            body = b"\0" * 5000
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture()
def keys() -> tuple[Any, str]:
    return signing.generate()


def make(tmp_path: Path, pub: str | None) -> tuple[Device, CommandHandler]:
    dev = Device()
    h = CommandHandler(dev, tmp_path, public_key=pub, download_timeout_s=1.0, model_max_bytes=4096)
    return dev, h


def model_args(priv: Any, url: str, *, sha: str = SHA, tamper: bool = False) -> dict[str, Any]:
    manifest = update_manifest(
        "blazeface-short", detector="faces", counter=1, name="face", version="2",
        file="m.tflite", sha256=sha,
    )  # fmt: skip
    sig = signing.sign(priv, manifest.encode())
    if tamper:
        manifest = manifest.replace('"2"', '"3"')
    return {"detector": "faces", "url": url, "sha256": sha, "manifest": manifest, "signature": sig}


def cmd(args: dict[str, Any], req: str = "r1") -> bytes:
    return json.dumps({"v": 1, "id": req, "args": args}).encode()


def test_model_update_verified_and_swapped(tmp_path: Path, http_base: str, keys: Any) -> None:
    priv, pub = keys
    dev, h = make(tmp_path, pub)
    r = h.handle("model", cmd(model_args(priv, f"{http_base}/good")))
    assert r.ok, r.message
    assert r.id == "r1" and r.command == "model"
    assert dev.model is not None and (dev.model / "m.tflite").read_bytes() == MODEL_BYTES


def test_config_applied(tmp_path: Path) -> None:
    dev, h = make(tmp_path, None)
    r = h.handle("config", cmd({"toml": "device_id = 'cam2'\n"}))
    assert r.ok and dev.config == "device_id = 'cam2'\n"


def test_snapshot_in_reply(tmp_path: Path) -> None:
    _, h = make(tmp_path, None)
    r = h.handle("snapshot", cmd({"max_bytes": 1000}))
    assert r.ok and r.result is not None and r.result["bytes"] == 104


HOSTILE: list[tuple[str, str, Any, str]] = [
    # (name, command, payload or args builder key, expected message fragment)
    ("bad json", "config", b"{not json", "bad JSON"),
    ("wrong type of args", "config", {"v": 1, "id": "r1", "args": {"toml": 5}}, "toml"),
    ("args not an object", "config", {"v": 1, "id": "r1", "args": [1]}, "args"),
    ("missing id", "config", {"v": 1, "args": {}}, "id"),
    ("unknown command", "reboot", {"v": 1, "id": "r1"}, "unknown command 'reboot'"),
    (
        "invalid config",
        "config",
        {"v": 1, "id": "r1", "args": {"toml": "device_id = 5"}},
        "device_id",
    ),
    ("config not toml", "config", {"v": 1, "id": "r1", "args": {"toml": "= ="}}, "config"),
    ("extra arg", "snapshot", {"v": 1, "id": "r1", "args": {"bogus": 1}}, "bogus"),
    (
        "snapshot too big",
        "snapshot",
        {"v": 1, "id": "r1", "args": {"max_bytes": 10**9}},
        "max_bytes",
    ),
]


@pytest.mark.parametrize(
    ("name", "command", "payload", "fragment"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_commands_change_nothing(
    tmp_path: Path, name: str, command: str, payload: Any, fragment: str
) -> None:
    dev, h = make(tmp_path, None)
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = h.handle(command, raw)
    assert not r.ok
    assert fragment in r.message
    assert dev.config == "device_id = 'cam1'\n" and dev.model is None


MODEL_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("hash mismatch", "/good", {"sha": "0" * 64}, "sha256"),
    ("signature over another manifest", "/good", {"tamper": True}, "signature"),
    ("garbage body", "/garbage", {}, "sha256"),
    ("url times out", "/slow", {}, "longer than"),
    ("url not found", "/missing", {}, "cannot download"),
    ("over the size cap", "/huge", {}, "cap"),
    ("not http", "file:///etc/passwd", {}, "url"),
]


@pytest.mark.parametrize(
    ("name", "path", "opts", "fragment"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES]
)
def test_hostile_model_updates_change_nothing(
    tmp_path: Path,
    http_base: str,
    keys: Any,
    name: str,
    path: str,
    opts: dict[str, Any],
    fragment: str,
) -> None:
    priv, pub = keys
    dev, h = make(tmp_path, pub)
    url = path if "://" in path else f"{http_base}{path}"
    if opts.get("sha"):
        # a manifest honestly signed for a different file: the download cannot match it
        args = model_args(priv, url, sha=opts["sha"])
    else:
        args = model_args(priv, url, tamper=bool(opts.get("tamper")))
    r = h.handle("model", cmd(args))
    assert not r.ok
    assert fragment in r.message, r.message
    assert dev.model is None
    models = tmp_path / "models"
    assert not models.exists() or not any(models.iterdir())  # no bundle, no staging left


def test_model_signed_by_another_key(tmp_path: Path, http_base: str) -> None:
    other, _ = signing.generate()
    _, pub = signing.generate()
    dev, h = make(tmp_path, pub)
    r = h.handle("model", cmd(model_args(other, f"{http_base}/good")))
    assert not r.ok and "signature" in r.message and dev.model is None


def test_model_without_public_key_is_refused(tmp_path: Path, http_base: str, keys: Any) -> None:
    priv, _ = keys
    dev, h = make(tmp_path, None)
    r = h.handle("model", cmd(model_args(priv, f"{http_base}/good")))
    assert not r.ok and "model_public_key" in r.message and dev.model is None


def test_model_that_fails_to_load_is_rolled_back(tmp_path: Path, http_base: str, keys: Any) -> None:
    priv, pub = keys
    dev, h = make(tmp_path, pub)
    dev.fail_load = True
    r = h.handle("model", cmd(model_args(priv, f"{http_base}/good")))
    assert not r.ok and "rolled back" in r.message and dev.model is None
    assert not any((tmp_path / "models").iterdir())  # the rejected bundle is not kept


def test_bad_public_key_in_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_public_key"):
        make(tmp_path, "not-a-key")


class Replies:
    """A CommandWorker's ``send``: each reply with the time it came, in order."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str, dict[str, Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, payload: bytes) -> bool:
        with self._cond:
            self.got.append((time.monotonic(), name, json.loads(payload)))
            self._cond.notify_all()
        return True

    def wait(self, req: str, timeout: float = 10.0) -> tuple[float, dict[str, Any]]:
        with self._cond:
            assert self._cond.wait_for(
                lambda: any(r["id"] == req for _, _, r in self.got), timeout
            ), f"no reply to {req}; have {self.got}"
            return next((t, r) for t, _, r in self.got if r["id"] == req)


def test_a_slow_download_blocks_no_other_command(tmp_path: Path, http_base: str, keys: Any) -> None:
    """Before: commands ran one at a time, so a snapshot waited for the download's end."""
    priv, pub = keys
    dev = Device()  # a download deadline of 1.5 s; /slow takes 2 s
    h = CommandHandler(dev, tmp_path, public_key=pub, download_timeout_s=1.5, model_max_bytes=4096)
    replies = Replies()
    worker = CommandWorker(h, replies)
    worker.start()
    try:
        t0 = time.monotonic()
        worker.submit("model", cmd(model_args(priv, f"{http_base}/slow"), "m1"))
        time.sleep(0.1)
        worker.submit("snapshot", cmd({}, "s1"))
        worker.submit("config", cmd({"toml": "device_id = 'cam3'\n"}, "c1"))
        worker.submit("model", cmd(model_args(priv, f"{http_base}/good"), "m2"))
        for req in ("s1", "c1"):
            at, reply = replies.wait(req)
            assert reply["ok"] is True and at - t0 < 1.0, (req, at - t0)
        at, busy = replies.wait("m2")
        assert busy["ok"] is False and at - t0 < 1.0
        assert "busy" in busy["message"] and "'m1'" in busy["message"]
        at, slow = replies.wait("m1")
        assert slow["ok"] is False and "longer than 1.5 s" in slow["message"]
        assert 1.4 <= at - t0 <= 2.5, at - t0
        assert dev.config == "device_id = 'cam3'\n" and dev.model is None
        # once it is done, the next model update runs
        worker.submit("model", cmd(model_args(priv, f"{http_base}/good"), "m3"))
        assert replies.wait("m3")[1]["ok"] is True and dev.model is not None
    finally:
        worker.stop()


def test_stop_cancels_a_download_in_hand(tmp_path: Path, http_base: str, keys: Any) -> None:
    priv, pub = keys
    dev = Device()
    h = CommandHandler(dev, tmp_path, public_key=pub, download_timeout_s=30, model_max_bytes=4096)
    replies = Replies()
    worker = CommandWorker(h, replies)
    worker.start()
    worker.submit("model", cmd(model_args(priv, f"{http_base}/slow"), "m1"))
    time.sleep(0.4)
    t0 = time.monotonic()
    worker.stop()
    assert time.monotonic() - t0 < 1.0
    assert not worker.busy
    _, reply = replies.wait("m1", 1.0)
    assert reply["ok"] is False and "cancelled" in reply["message"]
    assert not any((tmp_path / "models").iterdir())
