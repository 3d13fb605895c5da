"""The ``[sync]`` section of a device config: broker, identity, outbox, telemetry.

Owned by cloud_sync; ``edge.config`` embeds it. pydantic, unknown keys rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.schema import DEFAULT_PREFIX


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TLSConfig(_Section):
    ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the broker's cert"
    )
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="client private key (mutual TLS)")
    insecure: bool = Field(default=False, description="skip hostname checks (testing only)")


class OutboxConfig(_Section):
    path: Path = Field(
        default=Path("outbox.db"), description="SQLite file (relative: to the data dir)"
    )
    max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="bound on stored payload bytes"
    )
    when_full: Literal["drop_oldest", "reject_new"] = Field(
        default="drop_oldest", description="what happens to events when the outbox is full"
    )


class SyncConfig(_Section):
    host: str = Field(default="127.0.0.1", description="MQTT broker host")
    port: int = Field(default=1883, gt=0, lt=65536)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    client_id: str | None = Field(default=None, description="default: the device id")
    username: str | None = None
    password_file: Path | None = Field(default=None, description="file holding the password")
    tls: TLSConfig | None = None
    prefix: str = Field(default=DEFAULT_PREFIX, description="topic prefix")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    batch_max_events: int = Field(default=100, ge=1, le=1000)
    batch_max_ms: int = Field(default=50, ge=0, le=10_000)
    inflight: int = Field(default=20, ge=1, le=1000, description="unacknowledged batches at once")
    puback_timeout_s: float = Field(
        default=10.0, gt=0, description="no PUBACK this long: reconnect and resend from the outbox"
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, description="wait this long for CONNACK")
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    telemetry_interval_s: float = Field(default=10.0, gt=0)
    delivery: Literal["hub", "broker"] = Field(
        default="hub",
        description='"hub": keep events until the hub acknowledges them (HubAckV1); '
        '"broker": delete on the broker\'s PUBACK (no edgewise hub behind the broker)',
    )
    hub_ack_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="PUBACK'd but no hub ack this long: send again (the wait doubles per resend)",
    )
    broker_unreachable_s: float = Field(
        default=60.0, gt=0, description="health turns red after the broker is unreachable this long"
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    model_public_key: str | None = Field(
        default=None, description="Ed25519 public key (base64 raw or PEM) that signs model bundles"
    )
