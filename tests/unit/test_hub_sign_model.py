"""``edge-hub sign-model``: the ``model`` command's args (minus the url) that a device with
the key accepts, and each bad input refused in one line before anything is written."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud_sync import signing
from cloud_sync.commands import ModelArgs
from cloud_sync.hub.model_signing import parse_duration
from edge.compat import UTC
from edge.errors import IntegrityError
from edge.models import zoo
from edge.models.manifest import Manifest
from edge.models.update_check import check_update
from tests.unit.hub_keys_support import keys, make_bundle, manifest_doc, run


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    priv, pub = keys(capsys, tmp_path / "keys")
    return {"bundle": make_bundle(tmp_path / "bundle"), "key": priv, "pub": pub, "tmp": tmp_path}


def sign(capsys: pytest.CaptureFixture[str], s: dict[str, Any], *extra: str) -> Any:
    out = s["tmp"] / "signed.json"
    r = run(capsys, "sign-model", str(s["bundle"]), "--key", str(s["key"]), "--detector",
            "face", "--out", str(out), *extra)  # fmt: skip
    assert r.rc == 0, r.err
    return json.loads(out.read_text())


def test_the_signed_args_verify_under_the_public_key_and_carry_the_update(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = int(time.time())
    doc = sign(capsys, setup)
    t1 = int(time.time())
    assert sorted(doc) == ["detector", "manifest", "sha256", "signature"]
    # what the device does: its key parser, the exact manifest bytes, ModelArgs
    signing.verify(
        signing.load_public_key(setup["pub"]), doc["manifest"].encode(), doc["signature"]
    )
    ModelArgs.model_validate({**doc, "url": "https://models.example/tiny-det.onnx"})
    m = Manifest.model_validate_json(doc["manifest"])
    payload = (setup["bundle"] / "tiny-det.onnx").read_bytes()
    assert doc["sha256"] == m.sha256 == hashlib.sha256(payload).hexdigest()
    assert doc["detector"] == "face"
    u = m.update
    assert u is not None
    assert u.detector == "face" and t0 <= u.counter <= t1  # default counter: unix time
    assert t0 - 1 <= u.issued_at.timestamp() <= t1
    assert u.expires_at - u.issued_at == timedelta(days=7)
    assert u.rollback is False and u.devices is None
    # everything else in the manifest is what the bundle holds, unchanged
    raw = json.loads(doc["manifest"])
    assert {k: v for k, v in raw.items() if k != "update"} == manifest_doc(m.sha256)


def test_counter_expiry_rollback_and_devices_are_signed_in(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = sign(capsys, setup, "--counter", "42", "--expires-in", "12h", "--rollback",
               "--device", "cam-2", "--device", "cam-1", "--device", "cam-2")  # fmt: skip
    u = Manifest.model_validate_json(doc["manifest"]).update
    assert u is not None
    assert u.counter == 42 and u.rollback is True and u.devices == ["cam-1", "cam-2"]
    assert u.expires_at - u.issued_at == timedelta(hours=12)


def test_a_tampered_manifest_no_longer_verifies(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = sign(capsys, setup, "--counter", "5")
    forged = doc["manifest"].replace('"counter":5', '"counter":6')
    assert forged != doc["manifest"]
    with pytest.raises(IntegrityError, match="signature: does not match"):
        signing.verify(signing.load_public_key(setup["pub"]), forged.encode(), doc["signature"])


def test_without_out_the_json_goes_to_stdout_and_the_note_to_stderr(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "sign-model", str(setup["bundle"]), "--key", str(setup["key"]),
            "--detector", "face")  # fmt: skip
    assert r.rc == 0
    assert sorted(json.loads(r.out)) == ["detector", "manifest", "sha256", "signature"]
    assert "serve" in r.err and "tiny-det.onnx" in r.err and "send-model" in r.err
    assert "PRIVATE" not in r.out + r.err


def test_a_manifest_file_a_model_file_a_toml_manifest_and_a_signed_manifest_are_taken(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    b: Path = setup["bundle"]
    first = sign(capsys, setup)
    for ref in (b / "manifest.json", b / "tiny-det.onnx"):
        setup["bundle"] = ref
        assert sign(capsys, setup)["sha256"] == first["sha256"]
    toml_dir = setup["tmp"] / "toml"
    toml_dir.mkdir()
    (toml_dir / "tiny-det.onnx").write_bytes((b / "tiny-det.onnx").read_bytes())
    (toml_dir / "manifest.toml").write_text(
        f'name = "tiny-det"\nversion = "2.0"\ntask = "detect"\nformat = "onnx"\n'
        f'file = "tiny-det.onnx"\nsha256 = "{first["sha256"]}"\nlicense = "MIT"\n'
        '[input]\nkind = "image"\n[decoder]\ntype = "ssd_anchor"\n'
    )
    setup["bundle"] = toml_dir
    assert Manifest.model_validate_json(sign(capsys, setup)["manifest"]).name == "tiny-det"
    # a signed manifest signed again: its old update is replaced, not kept
    (b / "manifest.json").write_text(first["manifest"])
    setup["bundle"] = b
    again = sign(capsys, setup, "--counter", "7")
    u = Manifest.model_validate_json(again["manifest"]).update
    assert u is not None and u.counter == 7


@pytest.mark.parametrize("name", ["blazeface-short", "nanodet-m"])
def test_a_pulled_zoo_model_is_signed_by_name(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """nanodet-m is converted on the device's side (npm + tf2onnx): its signed hash is the
    one of the file converted here, which the zoo cannot pin."""
    m = zoo.get(name)
    if not zoo.is_pulled(m):
        pytest.skip(f"{name} is not pulled (edge models pull {name}; ./dev test pulls all)")
    setup["bundle"] = name
    doc = sign(capsys, setup)
    local = zoo.installed(m)
    assert doc["sha256"] == local.sha256 == zoo.sha256_file(zoo.cached_file(m))
    signed = Manifest.model_validate_json(doc["manifest"])
    assert signed.source == m.source and signed.sha256 == local.sha256


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800),
                          ("2w", 1209600), (" 1d ", 86400)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def _sha_mismatch(s: dict[str, Any]) -> list[str]:
    (s["bundle"] / "tiny-det.onnx").write_bytes(b"a different model")
    return []


def _plain_file(s: dict[str, Any]) -> list[str]:
    doc = json.loads((s["bundle"] / "manifest.json").read_text())
    (s["bundle"] / "manifest.json").write_text(json.dumps({**doc, "file": "../tiny-det.onnx"}))
    return []


def _no_sha(s: dict[str, Any]) -> list[str]:
    doc = json.loads((s["bundle"] / "manifest.json").read_text())
    del doc["sha256"]
    (s["bundle"] / "manifest.json").write_text(json.dumps(doc))
    return []


def _bad_name(s: dict[str, Any]) -> list[str]:
    doc = json.loads((s["bundle"] / "manifest.json").read_text())
    (s["bundle"] / "manifest.json").write_text(json.dumps({**doc, "name": "../../escaped"}))
    return []


def _no_model(s: dict[str, Any]) -> list[str]:
    (s["bundle"] / "tiny-det.onnx").unlink()
    return []


def _no_manifest(s: dict[str, Any]) -> list[str]:
    (s["bundle"] / "manifest.json").unlink()
    return []


def _flags(*flags: str) -> Any:
    return lambda _s: list(flags)


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (_sha_mismatch, "tiny-det.onnx: sha256 is"),
        (_plain_file, "must be a plain file name"),
        (_no_sha, "manifest.json: sha256: Field required"),
        (_bad_name, "manifest.json: name: String should match pattern"),
        (_no_model, "file: tiny-det.onnx not found beside the manifest"),
        (_no_manifest, "folder has no manifest.json"),
        (_flags("--expires-in", "7"), "--expires-in: '7' is not a duration"),
        (_flags("--expires-in", "7x"), "--expires-in: '7x' is not a duration"),
        (_flags("--expires-in", "0d"), "--expires-in: '0d' is not a duration"),
        (_flags("--expires-in=-1d"), "--expires-in: '-1d' is not a duration"),
        (_flags("--expires-in", "1.5d"), "--expires-in: '1.5d' is not a duration"),
        (_flags("--expires-in", "99999w"), "--expires-in: expiry"),
        (_flags("--counter", "0"), "--counter: 0 must be 1.."),
        (_flags("--counter", str(2**63)), "--counter:"),
        (_flags("--detector", "a/b"), "--detector: 'a/b' must be"),
        (_flags("--device", "cam 1"), "--device: 'cam 1' is not a device id"),
        (_flags("--key", "/nonexistent/k.pem"), "--key /nonexistent/k.pem: no such file"),
    ],
    ids=["sha-mismatch", "file-path", "no-sha", "bad-name", "no-model", "no-manifest",
         "dur-unitless", "dur-unit", "dur-zero", "dur-negative", "dur-fraction", "dur-2100",
         "counter-0", "counter-big", "detector", "device", "missing-key"],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(
    change: Any, expect: str, setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    flags = change(setup)
    out = setup["tmp"] / "signed.json"
    argv = ["sign-model", str(setup["bundle"]), "--key", str(setup["key"]), "--detector",
            "face", "--out", str(out), *flags]  # fmt: skip
    r = run(capsys, *argv)
    assert r.rc == 2, r
    assert r.out == "" and len(r.err.splitlines()) == 1, r.err
    assert r.err.startswith("edge-hub: error: ") and expect in r.err, r.err
    assert not out.exists()


def test_the_wrong_kind_of_key_is_refused(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pub_file = setup["key"].with_suffix(".pub")
    r = run(capsys, "sign-model", str(setup["bundle"]), "--key", str(pub_file),
            "--detector", "face")  # fmt: skip
    assert r.rc == 2 and r.out == "" and "this is a public key" in r.err


def test_an_unknown_bundle_names_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "sign-model", "no-such-model", "--detector", "face")
    assert r.rc == 2 and "no such bundle folder or manifest, and not a zoo model" in r.err
    assert "blazeface-short" in r.err


def test_the_devices_own_checks_take_what_sign_model_writes(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """cloud_sync.signing and edge.models.update_check, as the device runs them."""
    doc = sign(capsys, setup, "--counter", "100", "--device", "cam-1")
    other_pub = signing.public_b64(signing.generate()[0])
    keys_ = signing.load_public_keys([other_pub, setup["pub"]])  # while rotating: either
    signing.verify_any(keys_, doc["manifest"].encode(), doc["signature"])
    m = Manifest.model_validate_json(doc["manifest"])
    now = datetime.now(UTC)
    u = check_update(m, detector="face", device_id="cam-1", now=now, last_counter=99,
                     running_version="2.0")  # fmt: skip
    assert u.counter == 100
    cases: list[tuple[dict[str, Any], str]] = [
        ({"device_id": "cam-2"}, "does not list this device"),
        ({"last_counter": 100}, "is not above 100"),
        ({"detector": "text"}, "update.detector is 'face'"),
        ({"now": now + timedelta(days=8)}, "expired"),
        ({"running_version": "3.0"}, "older than 3.0"),
    ]
    for kwargs, refusal in cases:
        args: dict[str, Any] = {"detector": "face", "device_id": "cam-1", "now": now,
                                "last_counter": 99, "running_version": "2.0"} | kwargs  # fmt: skip
        with pytest.raises(IntegrityError, match=refusal):
            check_update(m, **args)
