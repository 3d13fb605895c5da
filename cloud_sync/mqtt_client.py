"""Building paho clients for the publisher, and the small payload helpers it uses."""

from __future__ import annotations

import json
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_sync.mqtt_auth import DEVICE_TLS, read_secret_file, tls_context
from edge.config import SyncConfig


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
        client.tls_set_context(tls_context(cfg.tls, DEVICE_TLS))
    return client


def offline(device_id: str) -> bytes:
    return json.dumps({"v": 1, "device_id": device_id, "state": "offline"}).encode()


def read_password(cfg: SyncConfig) -> str | None:
    if cfg.password_file is None:
        return None
    return read_secret_file(cfg.password_file, "sync.password_file")


def status_of(payload: bytes) -> dict[str, Any]:
    """Decode a status payload (tests and tools)."""
    out: dict[str, Any] = json.loads(payload)
    return out
