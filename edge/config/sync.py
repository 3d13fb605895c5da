"""The ``[sync]`` section of a device config: broker, identity, outbox, telemetry.

Part of the device config (``edge.config``), so loading a config never imports
``cloud_sync``; ``cloud_sync`` (publisher, MQTT sink) imports it from here.

Every field a broker or the hub checks is checked here first, with the same bound
(from ``edge.wire``), so a config ``edge validate-config`` accepts is never one the
broker refuses at CONNECT or the hub refuses per batch.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from edge.config.base import Section
from edge.wire import (
    DEFAULT_PREFIX,
    MAX_BATCH_EVENTS,
    MAX_SNAPSHOT_BYTES,
    MAX_SNAPSHOT_HEADER,
    ClientId,
    MqttUsername,
    TopicPrefix,
)

ED25519_KEY_BYTES = 32
SNAPSHOT_MIN_BYTES = 2 * (MAX_SNAPSHOT_BYTES + MAX_SNAPSHOT_HEADER + 6)
"""``snapshot_max_bytes`` holds at least two of the largest snapshot messages."""
MAX_MODEL_KEYS = 4  # sync.model_public_key: the old and new key while rotating, and spare
MODEL_DOWNLOAD_TIMEOUT_S = 120.0
MODEL_DOWNLOAD_MIN_BYTES_PER_S = 16 * 1024
MODEL_DOWNLOAD_GRACE_S = 10.0
"""The `model` command's download limits (``cloud_sync.download``): the deadline, and the
average rate it must keep once the grace period has passed."""


def _host(value: str) -> str:
    if re.search(r"[\s\x00-\x1f\x7f/]", value):
        raise ValueError("a host name or address has no spaces, '/' or control characters")
    return value


Host = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_host)]
"""A DNS name (at most 253 characters), IPv4 or IPv6 address."""


class TLSConfig(Section):
    ca_file: Path | None = Field(
        default=None,
        description="CA bundle that signed the broker's cert (relative: to the config)",
    )
    cert_file: Path | None = Field(
        default=None, description="client certificate (mutual TLS; relative: to the config)"
    )
    key_file: Path | None = Field(
        default=None, description="client private key (mutual TLS; relative: to the config)"
    )
    insecure: bool = Field(default=False, description="skip hostname checks (testing only)")

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mutual TLS needs both cert_file and key_file (or neither)")
        return self


class OutboxConfig(Section):
    path: Path = Field(
        default=Path("outbox.db"), description="SQLite file (relative: to the data dir)"
    )
    max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="bound on stored payload bytes"
    )
    when_full: Literal["drop_oldest", "reject_new"] = Field(
        default="drop_oldest", description="what happens to events when the outbox is full"
    )
    snapshot_path: Path = Field(
        default=Path("snapshots.db"),
        description="SQLite file for event snapshots, relative to the data dir (whose lock "
        "covers it); a file apart from the events so a picture never delays or costs an event",
    )
    snapshot_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=SNAPSHOT_MIN_BYTES,
        description="bound on stored snapshot bytes, apart from max_bytes: when full the "
        "oldest snapshots are dropped (counted), never an event",
    )

    @field_validator("snapshot_path")
    @classmethod
    def _in_data_dir(cls, value: Path) -> Path:
        if value.is_absolute() or ".." in value.parts or not value.parts:
            raise ValueError(
                "give a file name relative to the data dir (no '..', not absolute): the data "
                "dir's lock is what keeps a second daemon off it"
            )
        return value


class SyncConfig(Section):
    host: Host = Field(default="127.0.0.1", description="MQTT broker host")
    port: int = Field(default=1883, gt=0, lt=65536)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    client_id: ClientId | None = Field(
        default=None, description="default: the device id; letters, digits, `_.:-`"
    )
    username: MqttUsername | None = Field(default=None, description="no control characters")
    password_file: Path | None = Field(
        default=None, description="file holding the password (relative: to the config)"
    )
    tls: TLSConfig | None = None
    prefix: TopicPrefix = Field(
        default=DEFAULT_PREFIX,
        description="topic prefix: `/`-separated levels, no `+`, `#`, empty level or leading `$`",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    batch_max_events: int = Field(default=100, ge=1, le=MAX_BATCH_EVENTS)
    batch_max_ms: int = Field(default=50, ge=0, le=10_000)
    inflight: int = Field(default=20, ge=1, le=1000, description="unacknowledged batches at once")
    puback_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="no PUBACK this long: reconnect and resend from the outbox",
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="wait this long for CONNACK"
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, le=3600)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=86400)
    telemetry_interval_s: float = Field(default=10.0, gt=0, le=86400)
    delivery: Literal["hub", "broker"] = Field(
        default="hub",
        description='"hub": keep events until the hub acknowledges them (HubAckV1); '
        '"broker": delete on the broker\'s PUBACK (no edgewise hub behind the broker)',
    )
    hub_ack_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="PUBACK'd but no hub ack this long: send again (the wait doubles per resend)",
    )
    broker_unreachable_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="health turns red after the broker is unreachable this long",
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    model_public_key: str | list[str] | None = Field(
        default=None,
        description="Ed25519 public key(s) (base64 raw or PEM) that sign model updates: one, "
        f"or a list of up to {MAX_MODEL_KEYS} while a key is rotated (docs/security.md); set "
        "locally, never by a remote command",
    )
    model_download_timeout_s: float = Field(
        default=MODEL_DOWNLOAD_TIMEOUT_S,
        gt=0,
        le=86400,
        description="a `model` command's download must end within this, wall clock (connect, "
        "redirects and every byte included)",
    )
    model_download_min_bytes_per_s: int = Field(
        default=MODEL_DOWNLOAD_MIN_BYTES_PER_S,
        ge=0,
        description=f"a `model` command's download must average at least this many bytes/s "
        f"once it has run {MODEL_DOWNLOAD_GRACE_S:g} s (0: no minimum)",
    )

    @field_validator("model_public_key")
    @classmethod
    def _key_shape(cls, value: str | list[str] | None) -> str | list[str] | None:
        # the shape only (cryptography, in the `sync` extra, parses it when the sink starts)
        if value is None:
            return value
        keys = [value] if isinstance(value, str) else value
        if not 1 <= len(keys) <= MAX_MODEL_KEYS:
            raise ValueError(
                f"give one key or a list of 1 to {MAX_MODEL_KEYS} keys (got {len(keys)}); "
                "remove the keys that no longer sign updates"
            )
        for i, key in enumerate(keys):
            where = "" if isinstance(value, str) else f"key {i}: "
            if key.strip().startswith("-----BEGIN"):
                continue
            try:
                raw = base64.b64decode(key.strip(), validate=True)
            except (ValueError, binascii.Error):
                raw = b""
            if len(raw) != ED25519_KEY_BYTES:
                raise ValueError(
                    f"{where}not an Ed25519 public key; give base64 of the 32 raw bytes or a "
                    "PEM block"
                )
        if len({k.strip() for k in keys}) != len(keys):
            raise ValueError("the same key is listed twice; list each key once")
        return value

    @property
    def model_public_keys(self) -> list[str]:
        """The configured keys as a list (empty: none; model updates are then refused)."""
        value = self.model_public_key
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    @model_validator(mode="after")
    def _backoff(self) -> SyncConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
