"""issue 11 items 2, 4, 5: signed model updates against a real `edge run` and a real
mosquitto, the payloads real zoo models (BlazeFace short and full, served over HTTP).

(a) a replayed signed update, with the same or a new command id, is refused and the
model is not downgraded; (b) an expired one is refused; (c) a manifest named
``../../../escaped`` is refused with nothing created or moved outside the models folder;
(d) an OTA model survives a config reload (SIGHUP), a remote ``config`` and a restart, and
health and telemetry say it is an OTA model; a local change of the detector's model drops
it but not its counter; (e) an update signed with a key the owner did not configure is
refused, while both of two configured keys verify."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync import signing
from edge.compat import UTC
from edge.demo.broker import free_port
from edge.models import zoo
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import (
    MQTT_SINK,
    EdgeRun,
    Hub,
    device_toml,
    healthz,
    metric,
    sync_toml,
    wait_for,
)
from tests.support.mosquitto import Broker, start_broker
from tests.support.mqtt_sub import Subscriber
from tests.support.ota import model_args, publish_zoo_file, serve_folder, update_manifest

pytestmark = pytest.mark.slow
DEVICE = "ota-dev"
SHORT, FULL = zoo.get("blazeface-short"), zoo.get("blazeface-full")
_counters = itertools.count(int(time.time()))


def next_counter() -> int:
    """Counters (and versions) only grow, across the tests of this module."""
    return next(_counters)


@dataclass
class Rig:
    """A daemon (config: two model keys), its broker, a hub that sends commands, a folder of
    model files served over HTTP."""

    root: Path
    cfg: Path
    broker: Broker
    hub: Hub
    daemon: EdgeRun
    health: int
    url: str
    keys: tuple[Ed25519PrivateKey, Ed25519PrivateKey]
    text: str

    @property
    def models(self) -> Path:
        return self.root / "x" / "y" / "data" / "models"

    def update(
        self,
        base: str = "blazeface-full",
        *,
        key: Ed25519PrivateKey | None = None,
        counter: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A signed ``model`` command for detector ``face``; version = counter by default."""
        c = counter if counter is not None else next_counter()
        fields.setdefault("version", f"1.{c}")
        manifest = update_manifest(base, detector="face", counter=c, **fields)
        return model_args(key or self.keys[0], manifest, f"{self.url}/{zoo.get(base).file}")

    def running(self) -> dict[str, Any]:
        code, body = healthz(self.health)
        assert code in (200, 503), code
        return dict(body.get("models", {}).get("face", {}))


def start_rig(root: Path, broker: Broker, url: str) -> Rig:
    video, _ = face_video(root / "faces.avi", 240, DEFAULT_SPANS)
    keys = (signing.generate(), signing.generate())
    pubs = json.dumps([keys[0][1], keys[1][1]])
    health = free_port()
    sync = sync_toml(broker.port, telemetry_interval_s=1.0) + f"model_public_key = {pubs}\n"
    text = device_toml(root / "x" / "y" / "data", video, health_port=health, sinks=MQTT_SINK,
                       sync=sync, device_id=DEVICE)  # fmt: skip
    cfg = root / "device.toml"
    cfg.write_text(text)
    hub = Hub(broker.port, DEVICE)
    daemon = EdgeRun(cfg, root / "daemon.log")
    hub.wait_online()
    wait_for(lambda: healthz(health)[0] == 200, 40, "the daemon healthy")
    return Rig(root, cfg, broker, hub, daemon, health, url, (keys[0][0], keys[1][0]), text)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("served")
    publish_zoo_file("blazeface-short", folder)
    publish_zoo_file("blazeface-full", folder)
    with serve_folder(folder) as url:
        yield url


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, served: str) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("ota")
    broker = start_broker(root / "broker")
    try:
        r = start_rig(root, broker, served)
    except BaseException:
        broker.stop()
        raise
    try:
        yield r
        assert r.daemon.terminate() == 0
    finally:
        r.hub.close()
        r.daemon.kill()
        broker.stop()


def send(rig: Rig, args: dict[str, Any], req: str | None = None) -> dict[str, Any]:
    """The ``model`` command with request id ``req`` (default: a fresh one); its reply."""
    req = req or f"m-{time.monotonic_ns()}"
    rig.hub.client.publish(
        f"{rig.hub.prefix}/cmd/model", json.dumps({"v": 1, "id": req, "args": args}), qos=1
    )
    wait_for(lambda: req in rig.hub.replies, 60, f"the reply to model {req}")
    return rig.hub.replies.pop(req)


def test_a_replayed_update_is_refused_and_the_model_not_downgraded(rig: Rig) -> None:
    first = rig.update("blazeface-full")
    second = rig.update("blazeface-short")
    assert send(rig, first, "upd-1")["ok"] is True
    reply = send(rig, second, "upd-2")
    assert reply["ok"] is True, reply
    newest = json.loads(second["manifest"])
    for req in ("upd-1", None):  # the same command id again, and a new one
        again = send(rig, first, req)
        assert again["ok"] is False, again
        assert "not above" in again["message"] and "replayed" in again["message"], again
    now = rig.running()
    assert (now["model"], now["version"]) == ("blazeface-short", newest["version"]), now
    assert now["source"] == "ota" and now["counter"] == newest["update"]["counter"]
    assert rig.daemon.proc.poll() is None


def test_an_expired_update_is_refused(rig: Rig) -> None:
    before = rig.running()
    past = datetime.now(UTC)
    stale = rig.update("blazeface-full", issued_at=past - timedelta(days=2),
                       expires_at=past - timedelta(days=1))  # fmt: skip
    reply = send(rig, stale)
    assert reply["ok"] is False and "expired" in reply["message"], reply
    assert rig.running() == before and before != {}


def test_a_path_trick_in_the_name_moves_nothing_outside_the_models_folder(rig: Rig) -> None:
    rig.models.mkdir(parents=True, exist_ok=True)
    inside = sorted(p.name for p in rig.models.iterdir())
    # ../../../ from the models folder is rig.root/x; the bundle would be escaped-<sha12>.
    # Something of the user's is there already: it must be neither replaced nor removed
    # (the old code deleted it, moved the bundle there, then removed that when the
    # daemon's manifest check failed)
    target = rig.root / "x" / f"escaped-{FULL.short_sha}"
    target.mkdir()
    (target / "keep.txt").write_text("the user's")
    trick = rig.update("blazeface-full", name="../../../escaped")
    reply = send(rig, trick)
    assert reply["ok"] is False and "name" in reply["message"], reply
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "the user's"
    for folder in (rig.root, rig.root.parent):  # and nothing anywhere above
        assert not any(p.name.startswith("escaped") for p in folder.iterdir()), folder
    assert [p.relative_to(rig.root) for p in rig.root.rglob("escaped*")] == [
        target.relative_to(rig.root)
    ]
    assert sorted(p.name for p in rig.models.iterdir()) == inside  # no bundle, no staging


def test_only_configured_keys_verify_and_both_of_two_do(rig: Rig) -> None:
    attacker = signing.generate()[0]
    forged = send(rig, rig.update("blazeface-full", key=attacker))
    assert forged["ok"] is False and "signature" in forged["message"], forged
    for key in rig.keys:  # old and new key while rotating
        args = rig.update("blazeface-full", key=key)
        reply = send(rig, args)
        assert reply["ok"] is True, reply
        assert rig.running()["counter"] == json.loads(args["manifest"])["update"]["counter"]


def test_an_ota_model_survives_reload_config_command_and_restart(
    tmp_path: Path, served: str
) -> None:
    broker = start_broker(tmp_path / "broker")
    sub = Subscriber(broker.port)
    rig = start_rig(tmp_path, broker, served)
    daemon = rig.daemon
    try:
        args = rig.update("blazeface-full")
        counter = json.loads(args["manifest"])["update"]["counter"]
        reply = send(rig, args)
        assert reply["ok"] is True, reply
        expect: dict[str, object] = {"model": "blazeface-full", "source": "ota", "counter": counter}

        def runs_ota() -> bool:
            now = rig.running()
            return {k: now.get(k) for k in expect} == expect

        def telemetry_says(source: str, name: str) -> bool:
            for t in sub.telemetry[-3:]:
                d = t.detectors.get("face")
                if d and d.source == source and d.model and d.model.name == name:
                    return bool(d.counter == counter)
            return False

        assert runs_ota(), rig.running()
        wait_for(lambda: telemetry_says("ota", "blazeface-full"), 15, "telemetry: ota")
        record = json.loads((tmp_path / "device.ota.json").read_text())
        assert record["counters"] == {"face": counter}
        assert record["detectors"]["face"]["config_model"] == "blazeface-short"

        # 1. SIGHUP with a changed file (another threshold): reloaded, still the OTA model
        rig.cfg.write_text(rig.text.replace("threshold = 0.6", "threshold = 0.65"))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: metric(rig.health, "edgewise_config_reloads_total") == 1, 30, "reload")
        assert runs_ota(), rig.running()

        # 2. a remote `config` (another threshold): applied, still the OTA model
        remote = rig.text.replace("threshold = 0.6", "threshold = 0.7")
        seen = len(rig.hub.statuses)
        cfg_reply = rig.hub.command("config", {"toml": remote}, timeout=60)
        assert cfg_reply["ok"] is True, cfg_reply
        wait_for(lambda: metric(rig.health, "edgewise_config_reloads_total") == 2, 30, "reload")
        assert runs_ota(), rig.running()

        # 3. a restart: the record is read again, the bundle verified again
        assert daemon.terminate() == 0
        daemon = EdgeRun(rig.cfg, tmp_path / "daemon2.log")
        rig.hub.wait_online(after=seen)
        wait_for(lambda: healthz(rig.health)[0] == 200, 40, "healthy after the restart")
        assert runs_ota(), rig.running()
        n = len(sub.telemetry)
        wait_for(lambda: len(sub.telemetry) > n + 1, 15, "telemetry after the restart")
        assert telemetry_says("ota", "blazeface-full"), sub.telemetry[-1]

        # 4. the owner changes the model locally: the config's model runs, the entry is
        # dropped, the counter kept: the same update replayed is still refused
        rig.cfg.write_text(remote.replace('model = "blazeface-short"', 'model = "blazeface-full"'))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: rig.running()["source"] == "config", 30, "the config's model")
        record = json.loads((tmp_path / "device.ota.json").read_text())
        assert record["detectors"] == {} and record["counters"] == {"face": counter}
        wait_for(lambda: telemetry_says("config", "blazeface-full"), 15, "telemetry: config")
        replay = send(rig, args)
        assert replay["ok"] is False and "not above" in replay["message"], replay
        assert sub.invalid == []  # every telemetry payload passed the v1 schema
        assert daemon.terminate() == 0
    finally:
        rig.hub.close()
        sub.close()
        daemon.kill()
        rig.daemon.kill()
        broker.stop()


def test_a_crash_mid_swap_is_repaired_when_the_daemon_starts_again(
    tmp_path: Path, served: str
) -> None:
    """kill -9 between moving the running bundle aside and moving the new one in (the
    same update sent again lands on the same bundle path) leaves the record naming a folder
    that is not there: on the old code the restarted daemon ran the config's model and
    health stayed red. It now puts the bundle back at start (and removes half downloads)."""
    broker = start_broker(tmp_path / "broker")
    rig = start_rig(tmp_path, broker, served)
    daemon = rig.daemon
    try:
        args = rig.update("blazeface-full")
        assert send(rig, args)["ok"] is True
        assert rig.running()["source"] == "ota"
        record = json.loads((tmp_path / "device.ota.json").read_text())
        bundle = Path(record["detectors"]["face"]["bundle"])
        daemon.kill()  # kill -9
        bundle.rename(bundle.parent / ".replaced-9f9f")  # the state the crash left
        (bundle.parent / ".incoming-ab12").mkdir()
        (bundle.parent / ".incoming-ab12" / FULL.file).write_bytes(b"\0" * 1000)
        daemon = EdgeRun(rig.cfg, tmp_path / "daemon2.log")
        wait_for(lambda: healthz(rig.health)[0] == 200, 40, "healthy after the restart")
        now = rig.running()
        assert (now["source"], now["model"]) == ("ota", "blazeface-full"), now
        assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]
        assert "put back" in (tmp_path / "daemon2.log").read_text()
        assert daemon.terminate() == 0
    finally:
        rig.hub.close()
        daemon.kill()
        rig.daemon.kill()
        broker.stop()
