"""The committed JSON Schema files match the models (regenerate: python -m cloud_sync.schema)."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_sync.schema import json_schemas, parse_topic, reply_topic, topic

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schema_files_are_current() -> None:
    for name, schema in json_schemas().items():
        path = SCHEMAS / f"{name}.schema.json"
        assert path.is_file(), f"{path} missing: run python -m cloud_sync.schema --write schemas"
        assert json.loads(path.read_text()) == schema, (
            f"{path} is stale: run python -m cloud_sync.schema --write schemas"
        )


def test_topics_round_trip() -> None:
    p = "edgewise/v1"
    assert parse_topic(p, topic(p, "cam1", "events")) == ("cam1", "events", None)
    assert parse_topic(p, topic(p, "cam1", "cmd", "model")) == ("cam1", "cmd", "model")
    assert parse_topic(p, reply_topic(p, "cam1", "model")) == ("cam1", "reply", "model")
    assert parse_topic(p, "other/cam1/events") is None
