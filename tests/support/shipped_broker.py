"""The mosquitto config edgewise ships (``examples/mosquitto/``), run as shipped on a free port.

Only the listener's port and the paths are rewritten: the ACL is the shipped file, the
password file and the certificates are made for the test (one login per name in
``DEVICES`` and ``HUB_WORKERS``), persistence goes to the test's folder. Every rewrite must
match: a shipped file that stops naming a path fails here, instead of a test quietly
running some other config. ``EDGEWISE_MOSQUITTO_EXAMPLES=<dir>`` points the tests at
another copy of the folder (e.g. an older one, to show what it let through).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import SyncConfig, TLSConfig
from edge.demo.broker import free_port
from tests.support.certs import make_pki
from tests.support.mosquitto import Broker

REPO = Path(__file__).resolve().parents[2]
Variant = Literal["password", "mtls"]
CONF = {"password": "mosquitto.conf", "mtls": "mosquitto-mtls.conf"}
DEVICES = ("cam-1", "cam-2", "cam-3")
HUB_WORKERS = ("_hub-1", "_hub-2")
HOME_ASSISTANT = "_homeassistant"  # Home Assistant's own login (the shipped ACL names it)


def examples_dir() -> Path:
    return Path(os.environ.get("EDGEWISE_MOSQUITTO_EXAMPLES") or REPO / "examples" / "mosquitto")


def render(variant: Variant, port: int, workdir: Path, pki: Path, passwd: Path) -> str:
    """The shipped config with the test's port and paths; raises if one is not where expected."""
    ex = examples_dir()
    text = (ex / CONF[variant]).read_text()
    rewrites = {
        "listener 8883": f"listener {port} 127.0.0.1",
        "/etc/mosquitto/edgewise.acl": str(ex / "acl"),
        "/etc/mosquitto/certs/ca.crt": str(pki / "ca.crt"),
        "/etc/mosquitto/certs/broker.crt": str(pki / "broker.crt"),
        "/etc/mosquitto/certs/broker.key": str(pki / "broker.key"),
        "/var/lib/mosquitto/": f"{workdir}/",
    }
    if variant == "password":
        rewrites["/etc/mosquitto/edgewise.passwd"] = str(passwd)
    for old, new in rewrites.items():
        n = sum(1 for line in text.splitlines() if old in line and not line.startswith("#"))
        assert n == 1, f"{ex / CONF[variant]}: expected one config line with {old!r}, found {n}"
        text = "\n".join(
            line.replace(old, new) if not line.startswith("#") else line
            for line in text.splitlines()
        )
    # as root mosquitto would drop to the 'mosquitto' user and lose the test's files
    return text + f"\nuser {getpass.getuser()}\nlog_dest stderr\nlog_type all\n"


@dataclass
class Fleet:
    """A broker running the shipped config, with a login (password and certificate) for
    every device in ``DEVICES`` and hub worker in ``HUB_WORKERS``."""

    variant: Variant
    workdir: Path
    pki: Path
    passwords: dict[str, str]
    broker: Broker

    @property
    def port(self) -> int:
        return self.broker.port

    def tls(self, login: str) -> TLSConfig:
        if self.variant == "mtls":
            return TLSConfig(
                ca_file=self.pki / "ca.crt",
                cert_file=self.pki / f"{login}.crt",
                key_file=self.pki / f"{login}.key",
            )
        return TLSConfig(ca_file=self.pki / "ca.crt")

    def device_sync(self, login: str, **overrides: Any) -> SyncConfig:
        """``[sync]`` for a device logged in as ``login`` (fast reconnects for tests)."""
        doc: dict[str, Any] = {
            "port": self.port, "tls": self.tls(login), "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2, "keepalive_s": 5,
        }  # fmt: skip
        if self.variant == "password":
            pw = self.workdir / f"{login}.pw"
            pw.write_text(self.passwords[login] + "\n")
            doc |= {"username": login, "password_file": pw}
        return SyncConfig.model_validate(doc | overrides)

    def hub_args(self, login: str) -> tuple[int, list[str], dict[str, str]]:
        """(port, extra ``edge-hub serve`` args, environment) for hub worker ``login``: the
        hub's own TLS flags straight to the shipped TLS listener (its certificate under
        mutual TLS, else its login with the password in the environment)."""
        env = {k: v for k, v in os.environ.items() if k != "EDGE_HUB_MQTT_PASSWORD"}
        args = ["--mqtt-tls-ca", str(self.pki / "ca.crt")]
        if self.variant == "mtls":
            args += ["--mqtt-tls-cert", str(self.pki / f"{login}.crt"),
                     "--mqtt-tls-key", str(self.pki / f"{login}.key")]  # fmt: skip
        else:
            args += ["--mqtt-username", login]
            env["EDGE_HUB_MQTT_PASSWORD"] = self.passwords[login]
        return self.port, args, env

    def client(self, login: str, client_id: str, **kw: Any) -> RawClient:
        return RawClient(self, login, client_id, **kw)

    def apply_auth(self, c: mqtt.Client, login: str) -> None:
        t = self.tls(login)
        c.tls_set(
            ca_certs=str(t.ca_file),
            certfile=str(t.cert_file) if t.cert_file else None,
            keyfile=str(t.key_file) if t.key_file else None,
        )
        if self.variant == "password":
            c.username_pw_set(login, self.passwords[login])

    def log(self) -> str:
        return (self.broker.workdir / "mosquitto.log").read_text(errors="replace")

    def close(self) -> None:
        self.broker.stop()


@contextmanager
def shipped_broker(tmp: Path, variant: Variant) -> Iterator[Fleet]:
    if variant == "password" and shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs mosquitto_passwd (apt-get install mosquitto)")
    logins = [*DEVICES, *HUB_WORKERS, HOME_ASSISTANT]
    pki = make_pki(tmp / "pki", logins)
    passwords = {name: f"pw-{name}-{os.urandom(4).hex()}" for name in logins}
    passwd = tmp / "passwd"
    passwd.write_text("")
    if variant == "password":
        for name, pw in passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, pw], check=True)
    workdir = tmp / "broker"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    raw = render(variant, port, workdir, pki, passwd)
    broker = Broker(workdir, port, raw=raw).start()
    fleet = Fleet(variant, tmp, pki, passwords, broker)
    try:
        yield fleet
    finally:
        fleet.close()


class RawClient:
    """A paho MQTT 5 client under one login, with the client id it asks for; records the
    CONNACK, every disconnect, the messages it gets and the PUBACK reason codes."""

    def __init__(
        self,
        fleet: Fleet,
        login: str,
        client_id: str,
        *,
        clean_start: bool = True,
        session_expiry_s: int = 0,
    ) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        fleet.apply_auth(self.c, login)
        self.connacks: list[ReasonCode] = []
        self.disconnects: list[str] = []
        self.messages: list[tuple[str, bytes]] = []
        self._acks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        if session_expiry_s:
            props.SessionExpiryInterval = session_expiry_s
        self.c.connect("127.0.0.1", fleet.port, clean_start=clean_start, properties=props)
        self.c.loop_start()
        with self._cv:
            assert self._cv.wait_for(lambda: self.connacks, 10), f"{login}: no CONNACK"

    @property
    def accepted(self) -> bool:
        return not self.connacks[0].is_failure

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._cv:
            self.connacks.append(rc)
            self._cv.notify_all()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._cv:
            self.disconnects.append(str(rc))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cv:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._cv:
            self._acks[mid] = rc
            self._cv.notify_all()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        with self._cv:
            self._subacks[mid] = codes
            self._cv.notify_all()

    def publish(self, topic: str, payload: bytes = b'{"v":1,"forged":true}') -> int | None:
        """QoS 1; the PUBACK's reason code (0x87: not authorised), None if none came."""
        mid = self.c.publish(topic, payload, 1).mid
        with self._cv:
            self._cv.wait_for(lambda: mid in self._acks, 5)
            rc = self._acks.get(mid)
        return None if rc is None else int(rc.value)

    def subscribe(self, *filters: str) -> list[int]:
        """QoS 1; the SUBACK's codes, one per filter."""
        _rc, mid = self.c.subscribe([(f, 1) for f in filters])
        assert mid is not None, "paho did not send the SUBSCRIBE"
        with self._cv:
            assert self._cv.wait_for(lambda: mid in self._subacks, 5), "no SUBACK"
            return [int(c.value) for c in self._subacks[mid]]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
