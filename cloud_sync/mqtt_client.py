"""Building paho clients for the publisher, and the small payload helpers it uses."""

from __future__ import annotations

import json
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.config import SyncConfig
from edge.errors import ConfigError


def new_client(
    cfg: SyncConfig, device_id: str, gen: int, status_topic: str, password: str | None
) -> mqtt.Client:
    v5 = cfg.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=cfg.client_id or device_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        userdata=gen,
        clean_session=None if v5 else True,
    )
    # publishes from the sender thread are written by the network thread's loop()
    client.on_socket_register_write = lambda *_: None
    client.max_inflight_messages_set(cfg.inflight + 16)
    client.will_set(status_topic, offline(device_id), qos=1, retain=True)
    if cfg.username:
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        t = cfg.tls
        client.tls_set(
            ca_certs=str(t.ca_file) if t.ca_file else None,
            certfile=str(t.cert_file) if t.cert_file else None,
            keyfile=str(t.key_file) if t.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(t.insecure)
    return client


def offline(device_id: str) -> bytes:
    return json.dumps({"v": 1, "device_id": device_id, "state": "offline"}).encode()


def read_password(cfg: SyncConfig) -> str | None:
    if cfg.password_file is None:
        return None
    try:
        return cfg.password_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"sync.password_file: cannot read {cfg.password_file} ({exc.strerror})"
        ) from None


def status_of(payload: bytes) -> dict[str, Any]:
    """Decode a status payload (tests and tools)."""
    out: dict[str, Any] = json.loads(payload)
    return out
