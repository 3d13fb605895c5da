"""The committed JSON Schema files match the models (regenerate: python -m cloud_sync.schema)."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_sync.schema import SCHEMAS_DIR, json_schemas, parse_topic, reply_topic, topic

REPO = Path(__file__).resolve().parents[2]


def test_committed_schema_files_are_current() -> None:
    for name, schema in json_schemas().items():
        path = SCHEMAS_DIR / f"{name}.schema.json"
        fix = "run python -m cloud_sync.schema --write cloud_sync/schemas"
        assert path.is_file(), f"{path} missing: {fix}"
        assert json.loads(path.read_text()) == schema, f"{path} is stale: {fix}"
    assert sorted(p.name for p in SCHEMAS_DIR.glob("*.json")) == sorted(
        f"{name}.schema.json" for name in json_schemas()
    ), "a schema file that no model writes"


def test_the_checkout_paths_lead_to_the_packaged_files() -> None:
    # one source of truth: device_profiles/ and schemas/ at the top are links into the packages
    assert (REPO / "schemas").resolve() == SCHEMAS_DIR.resolve()
    assert (REPO / "device_profiles").resolve() == (REPO / "edge" / "device_profiles").resolve()


def test_topics_round_trip() -> None:
    p = "edgewise/v1"
    assert parse_topic(p, topic(p, "cam1", "events")) == ("cam1", "events", None)
    assert parse_topic(p, topic(p, "cam1", "cmd", "model")) == ("cam1", "cmd", "model")
    assert parse_topic(p, reply_topic(p, "cam1", "model")) == ("cam1", "reply", "model")
    assert parse_topic(p, "other/cam1/events") is None
