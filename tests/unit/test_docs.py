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


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/security.md: each row names its test as ``tests/…py::name`` (or ``::name``,
    in the file named just before it); a renamed or removed test fails here."""
    import re

    text = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    named = 0
    current: str | None = None
    missing: list[str] = []
    for m in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)(?:\[[^\]`]*\])?`", text):
        current = m.group(1) or current
        assert current is not None, f"{m.group(0)} names no file before it"
        source = (REPO / current).read_text(encoding="utf-8") if (REPO / current).is_file() else ""
        if not re.search(rf"^(async )?def {m.group(2)}\(", source, re.MULTILINE):
            missing.append(f"{current}::{m.group(2)}")
        named += 1
    assert not missing, missing
    assert named >= 40, named  # the parse found the rows
