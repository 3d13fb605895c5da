"""The entities announced to Home Assistant, kept in the data folder across restarts.

A retained discovery config stays on the broker until something publishes an empty one
on its topic. When a label or zone leaves the config, the entity must be removed, also
when the change happens while the daemon is down (a restart with another config): so
what was announced is written here, atomically (``edge.atomic``), and an entity leaves
this file only once its removal has been acknowledged by the broker.

A missing file is an empty set. A corrupt one is logged and read as empty too: the
daemon runs on, and entities that only that file knew about stay in Home Assistant
until removed there by hand (the warning says so).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edge.atomic import write_atomic

log = logging.getLogger(__name__)

FILE_NAME = "homeassistant.json"
Announced = dict[str, str]
"""config topic → its state topic."""


def load(path: Path) -> Announced:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("homeassistant: cannot read %s (%s); treating it as empty", path, exc)
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a version 1 object")
        entities = data["entities"]
        if not isinstance(entities, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in entities.items()
        ):
            raise ValueError("entities: not an object of topics")
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        log.warning(
            "homeassistant: %s is corrupt (%s); treating it as empty: entities announced "
            "before and gone from the config since are not removed (delete them in Home "
            "Assistant)", path, exc,
        )  # fmt: skip
        return {}
    return dict(entities)


def save(path: Path, announced: Announced) -> None:
    """Replace the file; ``OSError`` propagates (the caller counts it and retries later)."""
    data = {"v": 1, "entities": dict(sorted(announced.items()))}
    write_atomic(path, json.dumps(data, indent=1).encode())
