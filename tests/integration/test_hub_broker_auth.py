"""The hub to the broker: TLS, mutual TLS and passwords, with a real mosquitto and the real
`edge-hub serve`. A hub that the broker will not take (a CA that does not verify it, no
client certificate, a wrong password) says why on /healthz and exits 1, one line naming
the flag to fix; a good one ingests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from edge.demo.broker import free_port
from tests.support.certs import make_pki
from tests.support.mosquitto import Broker

from .hub_support import HubProc, Publisher, make_batch, wait_for

pytestmark = pytest.mark.slow


def tls_broker(tmp: Path, pki: Path, extra: str = "") -> tuple[Broker, int]:
    """A broker with a plain listener (``.port``, for the test's publisher) and a TLS one
    (the port returned, for the hub)."""
    tls_port = free_port()
    conf = "\n".join(
        [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'broker.crt'}",
            f"keyfile {pki / 'broker.key'}",
            extra,
        ]
    )
    return Broker(tmp / "broker", free_port(), extra=conf).start(), tls_port


def publish_and_wait_stored(pub: Publisher, hub: HubProc, prefix: str, device: str) -> None:
    batch = make_batch(device, str(uuid.uuid4()), range(0, 5))
    pub.publish(topic(prefix, device, "events"), [batch.model_dump_json().encode()])
    wait_for(
        lambda: any(
            d["device_id"] == device and d["events"] == 5
            for d in hub.get("/api/devices")["devices"]
        )
    )


def status_of(hub: HubProc) -> int | None:
    try:
        return hub.health()[0]
    except OSError:  # not listening yet
        return None


def refused(hub: HubProc, needle: str) -> str:
    """The hub is red with ``needle`` in the reasons while it runs, then exits 1; the
    last stderr line (``edge-hub``'s own) says why."""
    reasons: list[str] = []
    deadline = time.monotonic() + 30
    while hub.p.poll() is None and time.monotonic() < deadline:
        try:
            status, body = hub.health()
        except OSError:  # not listening yet, or already gone
            time.sleep(0.05)
            continue
        if status == 503:
            reasons += body["reasons"]
        time.sleep(0.05)
    assert hub.exit_code(10) == 1
    text = hub.log.read_text()
    assert any(needle in r for r in reasons), (reasons, text[-2000:])
    last = text.strip().splitlines()[-1]
    assert "exiting 1: mqtt:" in last and needle in last, last
    return text


def test_the_hub_ingests_over_tls_and_a_wrong_ca_is_refused_clearly(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", [])
    stranger = make_pki(tmp_path / "stranger", [])  # another CA: not the broker's
    prefix = f"t{uuid.uuid4().hex[:8]}"
    broker, tls_port = tls_broker(tmp_path, pki)
    pub = Publisher(broker.port)
    try:
        hub = HubProc(
            f"sqlite:///{tmp_path}/a.db", tls_port, prefix, tmp_path / "a.log",
            "--mqtt-tls-ca", str(pki / "ca.crt"),
        )  # fmt: skip
        try:
            publish_and_wait_stored(pub, hub, prefix, "cam-tls")
        finally:
            hub.stop()
        assert "over TLS" in hub.log.read_text()
        wrong = HubProc(
            f"sqlite:///{tmp_path}/b.db", tls_port, prefix, tmp_path / "b.log",
            "--mqtt-tls-ca", str(stranger / "ca.crt"), wait=False,
        )  # fmt: skip
        text = refused(wrong, "the broker's certificate does not verify")
        assert "--mqtt-tls-ca" in text.strip().splitlines()[-1]
        # plain TCP to the TLS port: not a silent hang either
        plain = HubProc(
            f"sqlite:///{tmp_path}/c.db", tls_port, prefix, tmp_path / "c.log", wait=False
        )
        try:
            wait_for(lambda: status_of(plain) == 503, timeout=20)
        finally:
            plain.stop()
    finally:
        pub.close()
        broker.stop()


def test_the_hub_ingests_over_mutual_tls_and_needs_its_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", ["hub"])
    prefix = f"t{uuid.uuid4().hex[:8]}"
    mtls = "require_certificate true\nuse_identity_as_username true"
    broker, tls_port = tls_broker(tmp_path, pki, mtls)
    pub = Publisher(broker.port)
    ca = ["--mqtt-tls-ca", str(pki / "ca.crt")]
    try:
        hub = HubProc(
            f"sqlite:///{tmp_path}/a.db", tls_port, prefix, tmp_path / "a.log", *ca,
            "--mqtt-tls-cert", str(pki / "hub.crt"), "--mqtt-tls-key", str(pki / "hub.key"),
        )  # fmt: skip
        try:
            publish_and_wait_stored(pub, hub, prefix, "cam-mtls")
        finally:
            hub.stop()
        # the same hub without a client certificate: the broker refuses the handshake
        anon = HubProc(
            f"sqlite:///{tmp_path}/b.db", tls_port, prefix, tmp_path / "b.log", *ca, wait=False
        )
        refused(anon, "--mqtt-tls-cert")
    finally:
        pub.close()
        broker.stop()


USERS = {"hub-a": "pw-a-7f3e", "hub-b": "pw-b-91c2", "dev": "pw-dev-55"}


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_the_password_from_a_file_or_the_environment_and_a_wrong_one(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user, pw in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    # client id = user name (the scheme that binds sessions to logins): every hub worker
    # has its own login, and --client-id names it
    extra = f"password_file {passwd}\nallow_anonymous false\nuse_username_as_clientid true"
    broker = Broker(tmp_path / "broker", free_port(), extra=extra).start()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    pub = Publisher(broker.port, auth=("dev", USERS["dev"]))
    pw_file = tmp_path / "hub-a.pw"
    pw_file.write_text(USERS["hub-a"] + "\n")
    pw_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "EDGE_HUB_MQTT_PASSWORD"}
    try:
        a = HubProc(
            f"sqlite:///{tmp_path}/a.db", broker.port, prefix, tmp_path / "a.log",
            "--mqtt-username", "hub-a", "--mqtt-password-file", str(pw_file),
            "--client-id", "hub-a", env=env,
        )  # fmt: skip
        try:
            publish_and_wait_stored(pub, a, prefix, "cam-a")
        finally:
            a.stop()
        b = HubProc(
            f"sqlite:///{tmp_path}/b.db", broker.port, prefix, tmp_path / "b.log",
            "--mqtt-username", "hub-b", "--group", "other",  # hub-a's session keeps its share
            env={**env, "EDGE_HUB_MQTT_PASSWORD": USERS["hub-b"]},
        )  # fmt: skip
        try:
            publish_and_wait_stored(pub, b, prefix, "cam-b")
        finally:
            b.stop()
        bad = HubProc(
            f"sqlite:///{tmp_path}/c.db", broker.port, prefix, tmp_path / "c.log",
            "--mqtt-username", "hub-b", wait=False,
            env={**env, "EDGE_HUB_MQTT_PASSWORD": "not-the-password"},
        )  # fmt: skip
        text = refused(bad, "refused the login")
        assert "EDGE_HUB_MQTT_PASSWORD" in text.strip().splitlines()[-1]
        for log in ("a.log", "b.log", "c.log"):  # no password in any log
            body = (tmp_path / log).read_text()
            assert not any(pw in body for pw in (*USERS.values(), "not-the-password"))
    finally:
        pub.close()
        broker.stop()
