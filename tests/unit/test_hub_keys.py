"""``edge-hub keys generate`` and ``keys public``: the pair on disk, in the form a device's
``sync.model_public_key`` takes, and every way a key file can be wrong (one line, exit 2,
no key material in the message)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cloud_sync import signing
from cloud_sync.hub.keyfiles import load_private_key
from edge.config import parse_config
from tests.unit.hub_keys_support import keys, run

DEVICE_CONFIG = """device_id = "cam-1"
[[streams]]
name = "door"
source = "door.mp4"
detectors = ["face"]
[detectors.face]
model = "blazeface-short"
[sync]
{line}
"""


def test_generate_writes_a_private_pem_0600_and_the_public_key_a_device_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "keys", "generate", "--out", str(tmp_path / "keys"))
    assert r.rc == 0, r.err
    priv, pub = tmp_path / "keys" / "model-signing.pem", tmp_path / "keys" / "model-signing.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    pub_b64 = pub.read_text().strip()
    line = f'model_public_key = "{pub_b64}"'
    assert line in r.out.splitlines() and str(priv) in r.out
    assert "PRIVATE" not in r.out  # the private key is never printed
    # the device's own parsers take the printed line and the .pub file
    cfg = parse_config(DEVICE_CONFIG.format(line=line), "device.toml")
    assert cfg.sync is not None and cfg.sync.model_public_key == pub_b64
    device_key = signing.load_public_key(pub.read_text())
    key = load_private_key(priv, env={})
    signing.verify(device_key, b"manifest bytes", signing.sign(key, b"manifest bytes"))


def test_generate_refuses_to_overwrite_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = keys(capsys, tmp_path)
    before = priv.read_bytes()
    r = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "k")
    assert r.rc == 2 and r.out == ""
    assert len(r.err.splitlines()) == 1, r.err
    assert "k.pem: already exists" in r.err and "--force" in r.err
    assert priv.read_bytes() == before
    # only the public half left (the private one deleted): still refused, nothing written
    priv.unlink()
    r = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "k")
    assert r.rc == 2 and "k.pub: already exists" in r.err and not priv.exists()
    r = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "k", "--force")
    assert r.rc == 0, r.err
    assert (tmp_path / "k.pub").read_text().strip() != pub
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", ""])
def test_generate_refuses_a_name_that_is_not_a_file_stem(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "keys", "generate", "--out", str(tmp_path / "k"), "--name", name)
    assert r.rc == 2 and r.err.startswith("edge-hub: error: --name:"), r.err
    assert not (tmp_path / "k").exists() or not any((tmp_path / "k").iterdir())


def test_keys_public_prints_the_same_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = keys(capsys, tmp_path)
    r = run(capsys, "keys", "public", "--key", str(priv))
    assert (r.rc, r.out.strip(), r.err) == (0, pub, "")
    r = run(capsys, "keys", "public", "--key", str(priv), "--json")
    assert json.loads(r.out) == {"public_key": pub, "toml": f'model_public_key = "{pub}"'}


def test_a_key_from_the_environment_and_an_encrypted_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    priv, pub = keys(capsys, tmp_path)
    monkeypatch.setenv("EDGE_HUB_SIGNING_KEY", priv.read_text())
    r = run(capsys, "keys", "public")
    assert (r.rc, r.out.strip()) == (0, pub)
    monkeypatch.delenv("EDGE_HUB_SIGNING_KEY")

    monkeypatch.setenv("EDGE_HUB_KEY_PASSPHRASE", "correct horse")
    r = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "enc", "--json")
    assert r.rc == 0 and json.loads(r.out)["encrypted"] is True
    enc = tmp_path / "enc.pem"
    assert enc.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    enc_pub = (tmp_path / "enc.pub").read_text().strip()
    assert run(capsys, "keys", "public", "--key", str(enc)).out.strip() == enc_pub
    monkeypatch.setenv("EDGE_HUB_KEY_PASSPHRASE", "wrong")
    r = run(capsys, "keys", "public", "--key", str(enc))
    assert r.rc == 2 and "EDGE_HUB_KEY_PASSPHRASE is wrong" in r.err
    monkeypatch.delenv("EDGE_HUB_KEY_PASSPHRASE")
    r = run(capsys, "keys", "public", "--key", str(enc))
    assert r.rc == 2 and "the key is encrypted; set EDGE_HUB_KEY_PASSPHRASE" in r.err


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _rsa() -> bytes:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _ecdsa() -> bytes:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def _public_pem() -> bytes:
    return (
        signing.generate()[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "no such file; make a key pair with: edge-hub keys generate"),
        (lambda: signing.generate()[1].encode(), "this is a public key"),
        (_public_pem, "this is a public key"),
        (_rsa, "not an Ed25519 key (RSA)"),
        (_ecdsa, "not an Ed25519 key (ECDSA)"),
        (lambda: b"hello", "not a PEM private key"),
        (
            lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "not a readable",
        ),
    ],
    ids=["missing", "public-b64", "public-pem", "rsa", "ecdsa", "garbage", "broken-pem"],
)
def test_a_wrong_key_is_one_line_naming_the_file(
    content: object, expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "key.pem"
    secret = b""
    if callable(content):
        secret = content()
        path.write_bytes(secret)
    r = run(capsys, "keys", "public", "--key", str(path))
    assert r.rc == 2 and r.out == ""
    assert len(r.err.splitlines()) == 1, r.err
    assert r.err.startswith(f"edge-hub: error: --key {path}: "), r.err
    assert expect in r.err, r.err
    for line in secret.decode().splitlines():  # no key material in the message
        if len(line) > 8 and not line.startswith("-----"):
            assert line not in r.err


def test_no_key_at_all_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGE_HUB_SIGNING_KEY", raising=False)
    r = run(capsys, "keys", "public")
    assert r.rc == 2
    assert "no signing key: pass --key FILE.pem or set EDGE_HUB_SIGNING_KEY" in r.err


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = keys(capsys, tmp_path)
    priv.chmod(0o644)
    r = run(capsys, "keys", "public", "--key", str(priv))
    assert r.rc == 0 and r.out.strip() == pub
    assert "warning:" in r.err and "mode 0644" in r.err and "chmod 600" in r.err
