"""``edge-hub send-model`` and ``edge-hub send`` against the real hub API (``Hub`` on
uvicorn, SQLite, a bearer token) whose MQTT side is a small fake: a "device" that records
each command it is handed and answers it through the store, as the hub's ingest does.

Shown: the command's args are sign-model's output plus the url, byte for byte; ``--wait``
exits 0 / 1 (refused) / 3 (no reply); a missing or wrong token, an unreachable hub and a
bad signed file are one line and exit 2, before anything is sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import uvicorn

from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import Store, open_store
from cloud_sync.hub.ingest import Ingest
from cloud_sync.hub.metrics import HubMetrics
from cloud_sync.hub.snapshots.storage import SnapshotStore, default_dir
from cloud_sync.hub.validate import Reply
from cloud_sync.schema import CommandReplyV1, CommandV1
from edge.demo.broker import free_port
from edge.supervise import ComponentHealth
from tests.unit.hub_keys_support import Result, keys, make_bundle, run

TOKEN = "t0ken-for-tests"
Answer = Callable[[str, dict[str, Any]], tuple[bool, str] | None]


@dataclass
class FakeDevices:
    """Stands in for the broker and the devices: ``answer`` decides each reply (None: none)."""

    store: Store
    answer: Answer = lambda _name, _args: (True, "ok")
    metrics: HubMetrics = field(default_factory=HubMetrics)
    got: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def start(self) -> None:
        self.metrics.mqtt_connected = True

    def stop(self) -> None:
        pass

    def health(self) -> list[ComponentHealth]:
        return [ComponentHealth("mqtt", True)]

    def publish_command(self, t: str, payload: bytes, timeout: float = 5.0) -> None:
        _prefix, _v, device, _cmd, name = t.split("/")
        cmd = CommandV1.model_validate_json(payload)
        self.got.append((device, name, cmd.args))
        said = self.answer(name, cmd.args)
        if said is not None:
            reply = CommandReplyV1(id=cmd.id, command=name, ok=said[0], message=said[1])
            threading.Timer(
                0.2, lambda: self.store.write([], replies=[Reply(device, name, reply)])
            ).start()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[str, FakeDevices]]:
    store = open_store(f"sqlite:///{tmp_path}/hub.db")
    store.migrate()
    devices = FakeDevices(store)
    snaps = SnapshotStore(store, default_dir(store.url, None))
    app = Hub(store, cast(Ingest, devices), token=TOKEN, snapshots=snaps).app
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the hub did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", devices
    server.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture
def signed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    priv, _pub = keys(capsys, tmp_path / "keys")
    bundle = make_bundle(tmp_path / "bundle")
    out = tmp_path / "signed.json"
    r = run(capsys, "sign-model", str(bundle), "--key", str(priv), "--detector", "face",
            "--device", "cam-1", "--out", str(out))  # fmt: skip
    assert r.rc == 0, r.err
    return out


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("EDGE_HUB_URL", raising=False)


URL = "http://127.0.0.1:9/models/tiny-det.onnx"


def send_model(
    capsys: pytest.CaptureFixture[str], hub_url: str, signed: Path, *extra: str
) -> Result:
    return run(capsys, "send-model", str(signed), "--url", URL, "--device", "cam-1",
               "--hub", hub_url, *extra)  # fmt: skip


def test_send_model_waits_for_the_ok_and_sends_the_signed_args_plus_url(
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    r = send_model(capsys, url, signed, "--wait", "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)["commands"]
    assert len(doc) == 1 and doc[0]["device"] == "cam-1" and doc[0]["ok"] is True
    assert doc[0]["topic"] == "edgewise/v1/cam-1/cmd/model"
    assert devices.got == [("cam-1", "model", {**json.loads(signed.read_text()), "url": URL})]
    # text mode, token from a file: the command id, then the device's answer
    token_file = signed.with_name("token")
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("EDGE_HUB_TOKEN")
    r = send_model(capsys, url, signed, "--wait", "--token-file", str(token_file))
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("cam-1: sent model command ") and lines[1] == "cam-1: ok: ok"
    assert TOKEN not in r.out + r.err


def test_without_wait_it_prints_the_command_id_the_hub_recorded(
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    devices.answer = lambda _n, _a: None
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    r = send_model(capsys, url, signed, "--json")
    assert r.rc == 0, r.err
    cmd_id = json.loads(r.out)["commands"][0]["id"]
    assert devices.store.commands("cam-1")[0]["id"] == cmd_id


def test_a_refusal_exits_1_with_the_devices_reason(
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    devices.answer = lambda _n, _a: (False, "model: counter 5 is not above 9 (replay?)")
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    r = send_model(capsys, url, signed, "--wait")
    assert r.rc == 1
    assert r.err.strip() == (
        "edge-hub: error: refused model: cam-1: model: counter 5 is not above 9 (replay?)"
    )


def test_no_reply_within_the_timeout_exits_3(
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    devices.answer = lambda _n, _a: None
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    t0 = time.monotonic()
    r = send_model(capsys, url, signed, "--wait", "--timeout", "1")
    assert r.rc == 3 and time.monotonic() - t0 < 10
    assert "cam-1: no reply to command" in r.err and "within 1 s" in r.err


@pytest.mark.parametrize(
    ("token", "expect"),
    [(None, "the hub needs a token; pass --token-file FILE or set EDGE_HUB_TOKEN"),
     ("wrong", "the token was refused; check --token-file or EDGE_HUB_TOKEN")],
)  # fmt: skip
def test_a_missing_or_wrong_token_is_a_401_line(
    token: str | None,
    expect: str,
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    if token:
        monkeypatch.setenv("EDGE_HUB_TOKEN", token)
    r = send_model(capsys, url, signed, "--wait")
    assert r.rc == 2 and r.out == "" and len(r.err.splitlines()) == 1
    assert "401 unauthorized" in r.err and expect in r.err, r.err
    assert devices.got == []


def test_an_unreachable_hub_is_one_line(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub_url = f"http://127.0.0.1:{free_port()}"
    r = send_model(capsys, hub_url, signed)
    assert r.rc == 2 and len(r.err.splitlines()) == 1
    assert f"cannot reach the hub at {hub_url}" in r.err and "edge-hub serve" in r.err


def _edit(field_: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {**d, field_: value}


def _drop(field_: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {k: v for k, v in d.items() if k != field_}


def _expired(d: dict[str, Any]) -> dict[str, Any]:
    m = json.loads(d["manifest"])
    m["update"]["expires_at"] = "2001-01-01T00:00:00Z"
    return {**d, "manifest": json.dumps(m)}


@pytest.mark.parametrize(
    ("change", "flags", "expect"),
    [
        (_drop("signature"), [], "missing signature; expected exactly detector"),
        (_edit("url", "http://x/y"), [], "unexpected url; expected exactly detector"),
        (_edit("detector", "text"), [], "detector 'text' differs from the signed 'face'"),
        (_edit("sha256", "0" * 64), [], "sha256 differs from the manifest's"),
        (_edit("manifest", "{"), [], "manifest: not JSON"),
        (_expired, [], "the update expired at 2001-01-01T00:00:00Z; sign it again"),
        (None, ["--device", "cam-2"], "--device: cam-2 not among the devices"),
        (None, ["--url", "ftp://x/m.onnx"], "--url: 'ftp://x/m.onnx' must be an http://"),
        (None, ["--hub", "127.0.0.1:8080"], "--hub: '127.0.0.1:8080' must be http://"),
        (None, ["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: no such"),
    ],
    ids=["no-signature", "extra-key", "detector", "sha256", "manifest-json", "expired",
         "other-device", "url-scheme", "hub-url", "token-file"],
)  # fmt: skip
def test_a_bad_signed_file_or_flag_is_refused_before_sending(
    change: Callable[[dict[str, Any]], dict[str, Any]] | None,
    flags: list[str],
    expect: str,
    hub: tuple[str, FakeDevices],
    signed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    if change is not None:
        signed.write_text(json.dumps(change(json.loads(signed.read_text()))))
    argv = ["send-model", str(signed), "--url", URL, "--device", "cam-1", "--hub", url, *flags]
    r = run(capsys, *argv)
    assert r.rc == 2 and r.out == "" and len(r.err.splitlines()) == 1, r
    assert expect in r.err, r.err
    assert devices.got == []


def test_not_json_and_a_missing_file(
    tmp_path: Path, hub: tuple[str, FakeDevices], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = hub
    (tmp_path / "bad.json").write_text("nope")
    r = send_model(capsys, url, tmp_path / "bad.json")
    assert r.rc == 2 and "bad.json: not JSON" in r.err
    r = send_model(capsys, url, tmp_path / "none.json")
    assert r.rc == 2 and "none.json: no such file; make it with edge-hub sign-model" in r.err


def test_send_any_command(
    tmp_path: Path,
    hub: tuple[str, FakeDevices],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, devices = hub
    monkeypatch.setenv("EDGE_HUB_TOKEN", TOKEN)
    r = run(capsys, "send", "cam-1", "snapshot", "--args", '{"stream": "door"}', "--hub", url,
            "--wait", "--json")  # fmt: skip
    assert r.rc == 0, r.err
    assert json.loads(r.out)["commands"][0]["ok"] is True
    args_file = tmp_path / "args.json"
    args_file.write_text('{"toml": "device_id = \\"cam-1\\""}')
    assert run(capsys, "send", "cam-1", "config", "--args", f"@{args_file}", "--hub", url).rc == 0
    assert devices.got == [
        ("cam-1", "snapshot", {"stream": "door"}),
        ("cam-1", "config", {"toml": 'device_id = "cam-1"'}),
    ]
    for argv, expect in [
        (["send", "cam-1", "snapshot", "--args", "[1]"], "--args: must be a JSON object"),
        (["send", "cam-1", "snapshot", "--args", "{"], "--args: not JSON"),
        (["send", "cam-1", "Bad/Name"], "NAME: 'Bad/Name' must match"),
        (["send", "cam/1", "snapshot"], "--device: 'cam/1' is not a device id"),
    ]:
        r = run(capsys, *argv, "--hub", url)
        assert r.rc == 2 and expect in r.err, (argv, r.err)
    assert len(devices.got) == 2
