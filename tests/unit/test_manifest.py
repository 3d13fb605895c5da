"""The manifest schema: good manifests parse, each kind of mistake names its field."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise
from pathlib import Path
from typing import Any

import pytest

from edge.detectors import decoder_entry
from edge.errors import ManifestError
from edge.models import zoo
from edge.models.manifest import read_manifest


def _base() -> dict[str, Any]:
    return json.loads((zoo.ZOO_DIR / "blazeface-short.json").read_text())


def _write(tmp_path: Path, data: Any, name: str = "manifest.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


@pytest.mark.parametrize("name", sorted(zoo.zoo()))
def test_every_zoo_manifest_is_valid_with_its_decoder(name: str) -> None:
    m = zoo.get(name)
    assert m.source is not None and m.source.license
    decoder_entry(m, name)


@pytest.mark.parametrize(
    ("change", "message", "expectation"),
    [
        (lambda d: None, None, does_not_raise()),
        (lambda d: d.pop("sha256"), "sha256: Field required", pytest.raises(ManifestError)),
        (
            lambda d: d.update(sha256="abc"),
            "sha256: String should match",
            pytest.raises(ManifestError),
        ),
        (lambda d: d.update(task="dance"), "task: Input should be", pytest.raises(ManifestError)),
        (lambda d: d.update(colour="RGB"), "colour: Extra inputs", pytest.raises(ManifestError)),
        (
            lambda d: d["input"].update(layout="HWC"),
            "input.image.layout",
            pytest.raises(ManifestError),
        ),
        (
            lambda d: d["input"].update(kind="video"),
            "input: Input tag 'video'",
            pytest.raises(ManifestError),
        ),
    ],
)
def test_manifest_fields(
    tmp_path: Path, change: Any, message: str | None, expectation: AbstractContextManager[Any]
) -> None:
    data = _base()
    change(data)
    with expectation as exc:
        read_manifest(_write(tmp_path, data))
    if message is not None:
        assert message in str(exc.value)
        assert str(tmp_path / "manifest.json") in str(exc.value)
        assert "\n" not in str(exc.value)


def test_unknown_decoder_names_the_field_and_the_choices(tmp_path: Path) -> None:
    data = _base()
    data["decoder"]["type"] = "yolo_v99"
    m = read_manifest(_write(tmp_path, data))
    with pytest.raises(
        ManifestError, match=r"decoder\.type: unknown decoder 'yolo_v99'; choose one of"
    ):
        decoder_entry(m, "manifest.json")


def test_wrong_decoder_parameter_names_it(tmp_path: Path) -> None:
    data = _base()
    data["decoder"]["no_such_option"] = 3
    m = read_manifest(_write(tmp_path, data))
    with pytest.raises(ManifestError, match=r"decoder\.no_such_option"):
        decoder_entry(m, "manifest.json")


def test_decoder_for_the_wrong_input_kind(tmp_path: Path) -> None:
    data = json.loads((zoo.ZOO_DIR / "silero-vad.json").read_text())
    data["decoder"] = _base()["decoder"]
    m = read_manifest(_write(tmp_path, data))
    with pytest.raises(ManifestError, match="needs image input"):
        decoder_entry(m, "manifest.json")


def test_toml_manifest_and_broken_files(tmp_path: Path) -> None:
    toml = """
name = "my-face"
version = "1"
task = "detect"
format = "tflite"
file = "m.tflite"
sha256 = "%s"
license = "MIT"
labels = ["face"]
[input]
kind = "image"
width = 128
height = 128
[decoder]
type = "ssd_anchor"
""" % ("0" * 64)
    m = read_manifest(_write(tmp_path, toml, "manifest.toml"))
    assert m.input.kind == "image" and m.decoder.type == "ssd_anchor"
    with pytest.raises(ManifestError, match="not valid JSON/TOML"):
        read_manifest(_write(tmp_path, "{not json", "bad.json"))
    with pytest.raises(ManifestError, match="must be an object"):
        read_manifest(_write(tmp_path, [1, 2], "list.json"))
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "missing.json")
