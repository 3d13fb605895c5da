"""Home Assistant's MQTT discovery scheme, as documented, and a checker for payloads.

What this relies on (Home Assistant's documentation, read for this module):

- MQTT integration, "MQTT Discovery" (https://www.home-assistant.io/integrations/mqtt/):
  config topics are ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``,
  ``node_id`` and ``object_id`` match ``[a-zA-Z0-9_-]+``; a retained config creates the
  entity, an empty retained payload on the same topic removes it; ``device`` needs
  ``identifiers`` or ``connections`` and ties entities with a ``unique_id`` into the
  device registry; ``origin`` needs ``name`` (``sw_version``, ``support_url``
  optional). Home Assistant publishes its birth message ``online`` (and ``offline`` as
  its will) on ``<discovery_prefix>/status``; devices re-send their configs on
  ``online``.
- "availability": a list of ``{topic, payload_available (default "online"),
  payload_not_available (default "offline"), value_template}``; the template renders the
  raw payload to what is compared (``value_json`` is the payload parsed as JSON).
  ``availability_topic`` must not be used together with ``availability``.
- MQTT binary sensor (https://www.home-assistant.io/integrations/binary_sensor.mqtt/):
  ``state_topic`` with ``payload_on`` (default "ON") / ``payload_off`` (default "OFF"),
  ``device_class``, ``off_delay``, ``expire_after``; retained states are shown at once.
- MQTT sensor (https://www.home-assistant.io/integrations/sensor.mqtt/): ``state_topic``,
  ``state_class`` (``measurement``, ``total``, ``total_increasing``; a numeric state),
  ``unit_of_measurement``, ``suggested_display_precision``, ``expire_after``.

``check_config`` holds a payload to exactly those documented keys, so the producer
(``cloud_sync.ha.companion``) refuses to publish a config Home Assistant would reject or
misread, and the tests check every payload they receive with the same function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

HA_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
COMPONENTS = frozenset({"binary_sensor", "sensor"})
"""The components edgewise announces (the scheme knows many more)."""

BINARY_SENSOR_CLASSES = frozenset({
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
})  # fmt: skip
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})

AVAILABILITY_TEMPLATE = "{{ 'online' if value_json.state == 'online' else 'offline' }}"
"""edgewise's status payload is JSON (``StatusV1``: ``online``, ``offline`` from the will,
``stopped`` on a clean shutdown): only ``online`` is available."""

_TOPIC = re.compile(r"^[^+#\x00]+$")


def _str(v: object) -> bool:
    return isinstance(v, str)


def _topic(v: object) -> bool:
    return isinstance(v, str) and bool(_TOPIC.match(v)) and "//" not in v and len(v) < 65536


def _pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _device(v: object) -> list[str]:
    if not isinstance(v, dict):
        return ["device: an object"]
    known = {"identifiers", "connections", "name", "manufacturer", "model", "model_id",
             "sw_version", "hw_version", "serial_number", "suggested_area", "via_device",
             "configuration_url"}  # fmt: skip
    out = [f"device.{k}: not a documented key" for k in v if k not in known]
    ids = v.get("identifiers")
    if ids is None and v.get("connections") is None:
        out.append("device: needs identifiers or connections")
    if ids is not None and not (
        _str(ids) or (isinstance(ids, list) and ids and all(_str(i) and i for i in ids))
    ):
        out.append("device.identifiers: a string or a non-empty list of strings")
    out += [f"device.{k}: a string" for k in known - {"identifiers", "connections"}
            if k in v and not _str(v[k])]  # fmt: skip
    return out


def _origin(v: object) -> list[str]:
    if not isinstance(v, dict):
        return ["origin: an object"]
    out = [f"origin.{k}: not a documented key" for k in v
           if k not in {"name", "sw_version", "support_url"}]  # fmt: skip
    if not (_str(v.get("name")) and v.get("name")):
        out.append("origin.name: required, a string")
    out += [f"origin.{k}: a string" for k in ("sw_version", "support_url")
            if k in v and not _str(v[k])]  # fmt: skip
    return out


def _availability(v: object) -> list[str]:
    if not isinstance(v, list) or not v:
        return ["availability: a non-empty list"]
    out: list[str] = []
    for i, a in enumerate(v):
        if not isinstance(a, dict):
            out.append(f"availability[{i}]: an object")
            continue
        out += [f"availability[{i}].{k}: not a documented key" for k in a
                if k not in {"topic", "payload_available", "payload_not_available",
                             "value_template"}]  # fmt: skip
        if not _topic(a.get("topic")):
            out.append(f"availability[{i}].topic: required, a topic without wildcards")
        out += [f"availability[{i}].{k}: a string" for k in
                ("payload_available", "payload_not_available", "value_template")
                if k in a and not _str(a[k])]  # fmt: skip
    return out


Check = Callable[[object], bool]
_COMMON: dict[str, Check] = {
    "name": lambda v: v is None or _str(v),
    "unique_id": lambda v: _str(v) and bool(v),
    "state_topic": _topic,
    "qos": lambda v: v in (0, 1, 2) and not isinstance(v, bool),
    "icon": lambda v: _str(v) and str(v).startswith("mdi:"),
    "enabled_by_default": lambda v: isinstance(v, bool),
    "entity_category": lambda v: v in ("config", "diagnostic"),
    "expire_after": _pos_int,
    "force_update": lambda v: isinstance(v, bool),
    "value_template": _str,
    "json_attributes_topic": _topic,
    "availability_mode": lambda v: v in ("all", "any", "latest"),
}
_BY_COMPONENT: dict[str, dict[str, Check]] = {
    "binary_sensor": {
        "payload_on": _str,
        "payload_off": _str,
        "device_class": lambda v: v in BINARY_SENSOR_CLASSES,
        "off_delay": _pos_int,
    },
    "sensor": {
        "state_class": lambda v: v in STATE_CLASSES,
        "unit_of_measurement": _str,
        "suggested_display_precision": lambda v: (
            isinstance(v, int) and not isinstance(v, bool) and v >= 0
        ),
        "device_class": _str,
    },
}
_STRUCTURED = {"device": _device, "origin": _origin, "availability": _availability}


def parse_config_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """``(component, node_id, object_id)`` of a discovery config topic under ``prefix``
    (edgewise always uses the node level); None if it is not one."""
    if not topic.startswith(prefix + "/") or not topic.endswith("/config"):
        return None
    parts = topic[len(prefix) + 1 : -len("/config")].split("/")
    if len(parts) != 3:
        return None
    component, node, obj = parts
    if component not in COMPONENTS or not HA_ID.match(node) or not HA_ID.match(obj):
        return None
    return component, node, obj


def check_config(prefix: str, topic: str, payload: bytes | Mapping[str, Any]) -> list[str]:
    """What is wrong with one discovery config (empty: nothing): its topic, its JSON, each
    key against the documented keys and types of its component."""
    where = parse_config_topic(prefix, topic)
    if where is None:
        return [f"{topic}: not <prefix>/<binary_sensor|sensor>/<node_id>/<object_id>/config "
                "with node_id and object_id in [a-zA-Z0-9_-]"]  # fmt: skip
    component = where[0]
    if isinstance(payload, bytes | bytearray):
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return [f"{topic}: not JSON ({exc})"]
    else:
        data = dict(payload)
    if not isinstance(data, dict):
        return [f"{topic}: a JSON object is expected"]
    keys = {**_COMMON, **_BY_COMPONENT[component]}
    out: list[str] = []
    for k, v in data.items():
        if k in _STRUCTURED:
            out += _STRUCTURED[k](v)
        elif k not in keys:
            out.append(f"{k}: not a documented {component} key")
        elif not keys[k](v):
            out.append(f"{k}: {v!r} is not valid for a {component}")
    for required in ("state_topic", "unique_id"):  # unique_id: edgewise's rule (the registry)
        if required not in data:
            out.append(f"{required}: required")
    if "availability_topic" in data and "availability" in data:
        out.append("availability_topic and availability: use one")
    if "device" in data and "unique_id" not in data:
        out.append("device: needs a unique_id on the entity")
    return [f"{topic}: {p}" for p in out]


def render_availability(template: str | None, payload: bytes) -> str | None:
    """What Home Assistant compares with ``payload_available`` for ``payload``: the raw
    payload without a template, else edgewise's one template (``AVAILABILITY_TEMPLATE``)
    evaluated; None for a template this cannot evaluate (no Jinja here on purpose: the
    checker accepts only the template it can prove right)."""
    text = payload.decode("utf-8", "replace")
    if template is None:
        return text
    if template != AVAILABILITY_TEMPLATE:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return "offline"  # Jinja: value_json undefined -> the comparison fails -> 'offline'
    state = data.get("state") if isinstance(data, dict) else None
    return "online" if state == "online" else "offline"
