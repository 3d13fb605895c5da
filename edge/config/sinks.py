"""``[[sinks]]``: one model per sink type, told apart by ``type``.

A pydantic discriminated union: each table is validated against the model its
``type`` names, so a key that belongs to another type (``path`` on a stdout sink)
is an unknown key, and a missing one (``path`` on a jsonl sink) is reported at the
table. ``edge.sinks`` builds a sink from each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from edge.config.base import Section


class JsonlSinkConfig(Section):
    """Append one JSON object per event to a file."""

    type: Literal["jsonl"] = Field(title="Type", description="`jsonl`")
    path: Path = Field(title="Path", description="the file to append to (relative: to the config)")
    flush_every: int = Field(
        default=1, ge=1, le=100_000, title="Flush every", description="flush after this many events"
    )


class StdoutSinkConfig(Section):
    """One JSON object per event on standard output (logs go to stderr)."""

    type: Literal["stdout"] = Field(title="Type", description="`stdout`")
    flush_every: int = Field(
        default=1, ge=1, le=100_000, title="Flush every", description="flush after this many events"
    )


class MqttSinkConfig(Section):
    """The durable outbox and MQTT publisher (needs the `sync` extra and a `[sync]` section)."""

    type: Literal["mqtt"] = Field(title="Type", description="`mqtt`; `[sync]` says where to")


SinkConfig = Annotated[
    JsonlSinkConfig | StdoutSinkConfig | MqttSinkConfig, Field(discriminator="type")
]
"""Any one ``[[sinks]]`` table (``isinstance`` against the member models to tell them apart)."""

SINK_MODELS: tuple[type[Section], ...] = (JsonlSinkConfig, StdoutSinkConfig, MqttSinkConfig)
SINK_TYPES: tuple[str, ...] = tuple(
    get_args(m.model_fields["type"].annotation)[0] for m in SINK_MODELS
)
"""The `type` of each, in order: jsonl, stdout, mqtt."""
