"""The entities one device config announces: a binary sensor per (stream, label), a
sensor per (stream, zone), each with its discovery config and state topic.

Pure: the same config gives the same topics and payloads, so what a restart announces
can be compared with what the last run announced (``cloud_sync.ha.store``).

Labels: a stream reports the labels its detectors' ``labels`` filters name (minus
``exclude_labels``), else every label of the model. A COCO model has 80; announcing 80
binary sensors per camera floods Home Assistant with entities nobody asked for, so at
most ``max_labels`` are announced per stream, and a warning names the rest and says how
to choose (a detector ``labels = [...]`` filter).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cloud_sync.ha.discovery import AVAILABILITY_TEMPLATE
from edge.config import DetectorConfig, DeviceConfig
from edge.config.homeassistant import ha_id
from edge.models import zoo
from edge.models.resolve import resolve

log = logging.getLogger(__name__)

Component = Literal["binary_sensor", "sensor"]
StateKey = tuple[Literal["label", "zone"], str, str]
"""What a state topic follows: ``("label", stream, label)`` or ``("zone", stream, zone)``."""

ON, OFF = b"ON", b"OFF"
AUDIO_TASKS = frozenset({"vad", "kws"})


@dataclass(frozen=True, slots=True)
class Entity:
    component: Component
    key: StateKey
    config_topic: str
    state_topic: str
    config: dict[str, Any] = field(hash=False, compare=False)


def _object_part(text: str) -> str:
    """A readable object id part that stays unique: changed characters add a short hash of
    the original (``traffic light`` and ``traffic_light`` stay two entities)."""
    slug = ha_id(text)
    return slug if slug == text else f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"  # noqa: S324  a name, not a secret


def model_labels(ref: str, models_home: Path | None) -> tuple[list[str], bool]:
    """``(labels, audio)`` of a detector's model without loading it; ``([], False)`` when
    the manifest cannot be read (logged: that detector then announces nothing)."""
    try:
        m = (
            zoo.get(ref)
            if ref in zoo.zoo()
            else resolve(ref, models_home, pull_missing=False).manifest
        )
    except Exception as exc:  # any unreadable manifest: announce nothing for it, run on
        log.warning("homeassistant: cannot read the labels of model %r: %s", ref, exc)
        return [], False
    return list(m.labels), m.task in AUDIO_TASKS


def stream_labels(
    det_names: list[str], detectors: dict[str, DetectorConfig], models_home: Path | None
) -> list[tuple[str, bool]]:
    """``(label, audio)`` each stream reports, in order, without duplicates."""
    out: dict[str, bool] = {}
    for name in det_names:
        det = detectors[name]
        known, audio = model_labels(det.model, models_home)
        for label in known if det.labels is None else det.labels:
            if label not in det.exclude_labels:
                out.setdefault(label, audio)
    return list(out.items())


@dataclass(frozen=True, slots=True)
class Announcer:
    """How entities are named and tied to the device: topics, device and origin blocks."""

    prefix: str  # the discovery prefix
    node: str
    device_id: str
    status_topic: str
    version: str
    model: str

    def topics(self, component: Component, obj: str) -> tuple[str, str]:
        base = f"{self.prefix}/{component}/{self.node}/{obj}"
        return f"{base}/config", f"{base}/state"

    def common(self, obj: str, name: str, state_topic: str) -> dict[str, Any]:
        return {
            "name": name,
            "unique_id": f"edgewise_{self.node}_{obj}",
            "state_topic": state_topic,
            "qos": 1,
            "availability": [
                {
                    "topic": self.status_topic,
                    "value_template": AVAILABILITY_TEMPLATE,
                    "payload_available": "online",
                    "payload_not_available": "offline",
                }
            ],
            "device": {
                "identifiers": [f"edgewise_{self.node}"],
                "name": self.device_id,
                "manufacturer": "edgewise",
                "model": self.model,
                "sw_version": self.version,
            },
            "origin": {"name": "edgewise", "sw_version": self.version},
        }


def build_entities(cfg: DeviceConfig, status_topic: str, version: str) -> list[Entity]:
    """Every entity ``cfg`` announces (``cfg.homeassistant`` says where)."""
    ha = cfg.homeassistant
    a = Announcer(
        ha.discovery_prefix, ha.node_for(cfg.device_id), cfg.device_id, status_topic, version,
        f"edge device ({cfg.profile})" if cfg.profile else "edge device",
    )  # fmt: skip
    out: list[Entity] = []
    for s in cfg.streams:
        labels = stream_labels(s.detectors, cfg.detectors, cfg.models_home)
        if len(labels) > ha.max_labels:
            rest = [label for label, _ in labels[ha.max_labels :]]
            log.warning(
                "homeassistant: stream %r reports %d labels; announcing the first %d "
                "(homeassistant.max_labels), not %s. Name the ones you want with the "
                "detector's labels = [...]", s.name, len(labels), ha.max_labels,
                ", ".join(rest[:10]) + (" ..." if len(rest) > 10 else ""),
            )  # fmt: skip
            labels = labels[: ha.max_labels]
        for label, audio in labels:
            obj = f"{_object_part(s.name)}_{_object_part(label)}"
            config_topic, state_topic = a.topics("binary_sensor", obj)
            payload = a.common(obj, f"{label} detected at {s.name}", state_topic)
            payload.update(payload_on="ON", payload_off="OFF",
                           device_class="sound" if audio else "occupancy")  # fmt: skip
            out.append(Entity("binary_sensor", ("label", s.name, label), config_topic,
                              state_topic, payload))  # fmt: skip
        for z in s.zones:
            obj = f"{_object_part(s.name)}_zone_{_object_part(z.name)}"
            config_topic, state_topic = a.topics("sensor", obj)
            payload = a.common(obj, f"objects in {z.name} at {s.name}", state_topic)
            payload.update(state_class="measurement", unit_of_measurement="objects",
                           suggested_display_precision=0, icon="mdi:account-group")  # fmt: skip
            out.append(Entity("sensor", ("zone", s.name, z.name), config_topic, state_topic,
                              payload))  # fmt: skip
    return out
