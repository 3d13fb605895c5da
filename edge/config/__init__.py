"""The device config (TOML): streams, detectors, tracking, sinks, health listener, sync.

Validated with pydantic, unknown keys rejected. ``load_config`` raises
``InvalidConfigError`` whose ``problems`` are ``file:line key: message`` lines.

- ``edge.config.device``: ``DeviceConfig`` and its tables (detectors, tracking, health)
- ``edge.config.streams``: ``[[streams]]``
- ``edge.config.regions``: ``[[streams.zones]]`` and ``[[streams.lines]]`` (named regions)
- ``edge.config.sinks``: ``[[sinks]]``, one model per ``type`` (a discriminated union)
- ``edge.config.snapshots``: ``[snapshots]`` (event JPEGs)
- ``edge.config.sync``: ``[sync]`` (broker, identity, outbox), used by ``cloud_sync``
- ``edge.config.lines``: the TOML line of a key (``find_line``)
- ``edge.config.env``: ``${NAME}`` in string values, from the environment
- ``edge.config.load``: reading, expanding, validating, making paths absolute

Importing this package imports neither ``cloud_sync`` nor any runtime (onnxruntime,
OpenCV): a test and an import-linter contract (pyproject.toml) hold it to that.
"""

from __future__ import annotations

from edge.config.device import DetectorConfig, DeviceConfig, HealthConfig, TrackingConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.lines import find_line, key_lines
from edge.config.load import (
    InvalidConfigError,
    format_problems,
    load_config,
    parse_config,
    parse_toml,
    read_config_text,
    resolve_paths,
)
from edge.config.regions import LineConfig, ZoneConfig
from edge.config.sinks import (
    SINK_TYPES,
    JsonlSinkConfig,
    MqttSinkConfig,
    SinkConfig,
    StdoutSinkConfig,
)
from edge.config.snapshots import SnapshotsConfig
from edge.config.streams import MotionGateConfig, SourceType, StreamConfig, infer_source_type
from edge.config.sync import OutboxConfig, SyncConfig, TLSConfig

__all__ = [
    "SINK_TYPES",
    "DetectorConfig",
    "DeviceConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "InvalidConfigError",
    "JsonlSinkConfig",
    "LineConfig",
    "MotionGateConfig",
    "MqttSinkConfig",
    "OutboxConfig",
    "SinkConfig",
    "SnapshotsConfig",
    "SourceType",
    "StdoutSinkConfig",
    "StreamConfig",
    "SyncConfig",
    "TLSConfig",
    "TrackingConfig",
    "ZoneConfig",
    "find_line",
    "format_problems",
    "infer_source_type",
    "key_lines",
    "load_config",
    "parse_config",
    "parse_toml",
    "read_config_text",
    "resolve_paths",
]
