"""``[homeassistant]``: Home Assistant entities through MQTT discovery (``cloud_sync.ha``).

Off by default. One line at the top of the device config turns it on with the defaults,
``homeassistant = true`` (shorthand for ``[homeassistant]`` / ``enabled = true``); the
entities then go through the ``[sync]`` broker connection of the mqtt sink.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints

from edge.config.base import Section
from edge.wire import TopicPrefix

HA_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
"""What Home Assistant accepts as a discovery topic's ``node_id`` and ``object_id``."""

NodeId = Annotated[str, StringConstraints(pattern=HA_ID.pattern, max_length=64)]


def ha_id(text: str) -> str:
    """``text`` made valid as a discovery ``node_id`` / ``object_id``: every character
    outside ``[a-zA-Z0-9_-]`` becomes ``_`` (``cam.door`` → ``cam_door``)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text) or "_"


class HomeAssistantConfig(Section):
    enabled: bool = Field(
        default=False,
        title="Enabled",
        description="announce entities to Home Assistant (needs an mqtt sink); "
        "`homeassistant = true` at the top of the file is enough",
    )
    discovery_prefix: TopicPrefix = Field(
        default="homeassistant",
        title="Discovery prefix",
        description="Home Assistant's MQTT discovery prefix (its MQTT integration's setting)",
    )
    node_id: NodeId | None = Field(
        default=None,
        title="Node id",
        description="the discovery topics' node level, `[a-zA-Z0-9_-]` (default: the "
        "device id with every other character turned into `_`)",
    )
    max_labels: int = Field(
        default=10,
        ge=1,
        le=100,
        title="Max labels",
        description="binary sensors per stream at most: the detectors' `labels` filters "
        "name them, else the model's labels, the first this many (a warning names the rest)",
    )

    def node_for(self, device_id: str) -> str:
        return self.node_id or ha_id(device_id)
