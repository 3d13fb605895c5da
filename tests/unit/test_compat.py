"""Python 3.10 (JetPack 6) support: the 3.11-only names come from ``edge.compat`` alone.

mypy checks the packages as 3.10 (``python_version`` in pyproject.toml), which flags these
names there; the tests are not type-checked, so this scan covers them too.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge import compat
from edge.compat import UTC, tomllib

REPO = Path(__file__).resolve().parents[2]
ONLY_IN_311 = re.compile(r"^\s*(import tomllib\b|from datetime import [^\n]*\bUTC\b)", re.M)


def test_the_names_are_the_standard_ones() -> None:
    assert UTC is timezone.utc
    assert datetime(2026, 1, 1, tzinfo=UTC).isoformat() == "2026-01-01T00:00:00+00:00"
    if sys.version_info >= (3, 11):
        assert tomllib is importlib.import_module("tomllib")
    assert tomllib.loads('a = 1\n[b]\nc = "d"\n') == {"a": 1, "b": {"c": "d"}}
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("a = \n")


def test_no_module_but_compat_imports_a_name_python_3_10_lacks() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {m.group(1)}"
        for top in ("edge", "converters", "cloud_sync", "tests", "scripts", "bench")
        for path in sorted((REPO / top).rglob("*.py"))
        if path != Path(compat.__file__)
        for m in ONLY_IN_311.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "use `from edge.compat import UTC, tomllib`: " + "; ".join(offenders)


def test_the_package_says_it_runs_on_3_10() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.10"
    assert "tomli>=2; python_version < '3.11'" in project["project"]["dependencies"]
    assert project["tool"]["mypy"]["python_version"] == "3.10"
    assert project["tool"]["ruff"]["target-version"] == "py310"


def test_tomli_reads_every_shipped_toml_as_tomllib_does() -> None:
    # what a 3.10 install parses with (tomli is in the dev extra for mypy's 3.10 check)
    tomli = importlib.import_module("tomli")
    files = [
        *(REPO / "edge" / "device_profiles").glob("*.toml"),
        *(REPO / "examples").rglob("*.toml"),
    ]
    assert len(files) > 8
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert tomli.loads(text) == tomllib.loads(text), path
    with pytest.raises(tomli.TOMLDecodeError):
        tomli.loads("a = \n")
