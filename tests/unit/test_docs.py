"""The generated parts of the README (zoo table, manifest reference) match the code."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_readme_generated_sections_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_json_schema_files_are_current(tmp_path: object) -> None:
    import json

    from cloud_sync.schema import json_schemas

    for name, schema in json_schemas().items():
        path = REPO / "schemas" / f"{name}.schema.json"
        assert json.loads(path.read_text()) == schema, (
            f"{path} is stale: python -m cloud_sync.schema --write schemas"
        )
