"""Home Assistant through MQTT discovery: the device's detections as entities.

``discovery``: the documented scheme and the payload checker; ``entities``: what a config
announces; ``store``: what was announced, across restarts; ``companion``: the publisher
companion that announces, removes and keeps states.
"""

from cloud_sync.ha.companion import HomeAssistant
from cloud_sync.ha.discovery import check_config

__all__ = ["HomeAssistant", "check_config"]
