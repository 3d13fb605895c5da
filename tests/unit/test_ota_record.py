"""The daemon's OTA record (``edge.daemon.ota``, issue 11 item 4) with real bundles (BlazeFace
from the zoo cache, signed): beside the config, written atomically, applied again while
its bundle verifies, dropped (counter kept) when the owner changes the model, and, when
it cannot be read, the config's models run and every update is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cloud_sync import signing
from edge.config import DeviceConfig, parse_config, resolve_paths
from edge.daemon.ota import OtaBook, sweep, verify_bundle
from edge.errors import IntegrityError
from edge.models import zoo
from edge.models.ota_record import ASIDE_PREFIX, STAGING_PREFIX, OtaRecordError, read_record
from tests.support.ota import make_bundle
from tests.support.ota import update_manifest as _update_manifest

SHORT = zoo.get("blazeface-short")
DETECTOR = "faces"
DEVICE = "cam1"


def update_manifest(**kw: Any) -> str:
    kw.setdefault("detector", DETECTOR)
    kw.setdefault("counter", 10)
    return _update_manifest("blazeface-short", **kw)


@pytest.fixture()
def keys() -> tuple[Any, str]:
    return signing.generate()


def device_cfg(
    tmp_path: Path, keys: str | list[str], model: str = "blazeface-short"
) -> DeviceConfig:
    text = f"""\
device_id = "{DEVICE}"
data_dir = "{tmp_path / "data"}"
[[streams]]
name = "cam"
source = "{tmp_path / "video.avi"}"
detectors = ["{DETECTOR}"]
[detectors.{DETECTOR}]
model = "{model}"
[sync]
model_public_key = {json.dumps(keys)}
"""
    return resolve_paths(parse_config(text, "device.toml"), tmp_path)


@pytest.fixture()
def signed(tmp_path: Path, keys: Any) -> tuple[DeviceConfig, OtaBook, Path]:
    """A config, its (empty) OTA book and an accepted update: blazeface-short as version
    1.0, counter 10, bundle in the data dir's models folder."""
    priv, pub = keys
    cfg = device_cfg(tmp_path, pub)
    bundle = make_bundle(cfg.data_dir / "models", priv, update_manifest(version="1.0"))
    book = OtaBook(tmp_path / "device.toml")
    assert book.accept(DETECTOR, verify_bundle(bundle, DETECTOR, cfg), "blazeface-short") is None
    return cfg, book, bundle


def test_the_record_sits_beside_the_config(
    tmp_path: Path, signed: tuple[DeviceConfig, OtaBook, Path]
) -> None:
    _, book, bundle = signed
    assert book.path == tmp_path / "device.ota.json"
    doc = json.loads(book.path.read_text())
    assert doc["v"] == 1 and doc["counters"] == {DETECTOR: 10}
    entry = doc["detectors"][DETECTOR]
    assert entry["bundle"] == str(bundle.resolve()) and entry["config_model"] == "blazeface-short"
    assert (entry["name"], entry["version"], entry["counter"]) == ("blazeface-short", "1.0", 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "device.ota.json"]  # no tmp
    assert read_record(book.path) == book.record


def test_an_accepted_update_runs_again_after_a_restart(
    tmp_path: Path, signed: tuple[DeviceConfig, OtaBook, Path]
) -> None:
    cfg, _, bundle = signed
    again = OtaBook(tmp_path / "device.toml")  # a new process reads it from the disk
    assert again.bundles(cfg) == {DETECTOR: Path(str(bundle.resolve()))}
    model = verify_bundle(bundle, DETECTOR, cfg)
    assert again.source(DETECTOR, model) == "ota" and again.counter(DETECTOR) == 10
    assert again.health(cfg, {DETECTOR: "ota"}).ok


def test_changing_the_model_locally_drops_the_entry_and_keeps_the_counter(
    tmp_path: Path, keys: Any, signed: tuple[DeviceConfig, OtaBook, Path]
) -> None:
    cfg, book, bundle = signed
    local = device_cfg(tmp_path, keys[1], model="blazeface-full")
    assert book.bundles(local) == {}
    book.commit(local)
    assert read_record(book.path).detectors == {} and read_record(book.path).counters == {
        DETECTOR: 10
    }
    with pytest.raises(IntegrityError, match="not above 10"):  # the old update, replayed
        book.accept(DETECTOR, verify_bundle(bundle, DETECTOR, local), "blazeface-full")
    # and going back to the old model value does not bring the dropped entry back
    assert OtaBook(tmp_path / "device.toml").bundles(cfg) == {}


@pytest.mark.parametrize("damage", ["model file", "signature key removed", "manifest edited"])
def test_a_bundle_that_no_longer_verifies_is_not_used(
    tmp_path: Path, signed: tuple[DeviceConfig, OtaBook, Path], damage: str
) -> None:
    cfg, _, bundle = signed
    if damage == "model file":
        (bundle / SHORT.file).write_bytes(b"\0" * 100)
    elif damage == "signature key removed":
        cfg = device_cfg(tmp_path, signing.generate()[1])  # the owner rotated to another key
    else:
        text = (bundle / "manifest.json").read_text().replace('"1.0"', '"9.0"')
        (bundle / "manifest.json").write_text(text)
    book = OtaBook(tmp_path / "device.toml")
    assert book.bundles(cfg) == {}
    h = book.health(cfg, {DETECTOR: "config"})
    assert not h.ok and h.dependency and h.reason is not None
    assert "OTA update 10 not used" in h.reason
    assert ("sha256" in h.reason) if damage == "model file" else ("signature" in h.reason)


def test_an_entry_pointing_outside_the_models_folder_is_not_used(
    tmp_path: Path, keys: Any, signed: tuple[DeviceConfig, OtaBook, Path]
) -> None:
    cfg, book, bundle = signed
    elsewhere = tmp_path / "elsewhere"
    bundle.rename(elsewhere)
    doc = json.loads(book.path.read_text())
    doc["detectors"][DETECTOR]["bundle"] = str(elsewhere)
    book.path.write_text(json.dumps(doc))
    fresh = OtaBook(tmp_path / "device.toml")
    assert fresh.bundles(cfg) == {}
    assert "not a bundle folder inside" in (fresh.health(cfg, {DETECTOR: "config"}).reason or "")


@pytest.mark.parametrize("content", [b"{not json", b'{"v": 1, "counters": {"faces": -1}}', b"\xff"])
def test_an_unreadable_record_runs_the_config_and_refuses_updates(
    tmp_path: Path,
    signed: tuple[DeviceConfig, OtaBook, Path],
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    cfg, _, bundle = signed
    path = tmp_path / "device.ota.json"
    path.write_bytes(content)
    with caplog.at_level("ERROR", logger="edge.daemon"):
        book = OtaBook(tmp_path / "device.toml")
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(path) in line and "refused until it is repaired" in line and "\n" not in line
    assert book.bundles(cfg) == {}  # the config's models run
    h = book.health(cfg, {DETECTOR: "config"})
    assert not h.ok and h.dependency and str(path) in (h.reason or "")
    with pytest.raises(IntegrityError, match="OTA record is unusable"):
        book.accept(DETECTOR, verify_bundle(bundle, DETECTOR, cfg), "blazeface-short")
    book.commit(cfg)
    assert path.read_bytes() == content  # never overwritten: the owner repairs or deletes it
    path.unlink()  # deleting it is the owner's reset
    assert book.bundles(cfg) == {} and book.error is None and book.counter(DETECTOR) == 0


def test_a_record_that_cannot_be_written_changes_nothing(
    tmp_path: Path, signed: tuple[DeviceConfig, OtaBook, Path], keys: Any
) -> None:
    cfg, book, _ = signed
    priv, _ = keys
    newer = make_bundle(cfg.data_dir / "models", priv,
                        update_manifest(counter=11, version="2.0", name="short2"))  # fmt: skip
    book.path.unlink()
    book.path.mkdir()  # where the record goes, something that cannot be replaced by a file
    with pytest.raises(OtaRecordError, match="cannot write the OTA record"):
        book.accept(DETECTOR, verify_bundle(newer, DETECTOR, cfg), "blazeface-short")
    assert book.counter(DETECTOR) == 10 and book.path.is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no tmp left


def test_a_crash_mid_model_command_is_tidied_at_start(
    tmp_path: Path, signed: tuple[DeviceConfig, OtaBook, Path]
) -> None:
    """A crash between moving the running bundle aside and moving the new one in left the
    record naming a folder that is not there; a crash mid download left its staging folder.
    ``sweep`` (run by the daemon at start, under the data dir lock) puts the bundle back and
    removes the rest; the bundle then verifies and runs again."""
    cfg, book, bundle = signed
    models = bundle.parent
    aside = models / f"{ASIDE_PREFIX}0123abcd"
    bundle.rename(aside)  # the crash came here
    staging = models / f"{STAGING_PREFIX}x1"
    staging.mkdir()
    (staging / "model.tflite").write_bytes(b"\0" * 100)  # half a download
    stale = models / f"{ASIDE_PREFIX}feed"  # moved aside for a swap that went on to succeed
    shutil.copytree(aside, stale)
    keep = models / "someone-elses"
    keep.mkdir()
    assert book.bundles(cfg) == {}  # without the sweep: the update is not used
    done = sweep(models)
    assert len(done) == 3 and any("put back" in line for line in done), done
    assert sorted(p.name for p in models.iterdir()) == sorted([bundle.name, keep.name])
    assert book.bundles(cfg) == {DETECTOR: bundle.resolve()}
    assert sweep(models) == []  # nothing left to do
    assert sweep(tmp_path / "no-such-folder") == []
