"""TLS and password settings of an MQTT client (hub and device share them): every file is
read before connecting, and a bad one is one line naming the flag or key."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_sync.mqtt_auth import (
    DEVICE_TLS,
    HUB_TLS,
    TLSFiles,
    read_secret_file,
    tls_context,
    tls_failure,
)
from edge.config import TLSConfig
from edge.errors import ConfigError
from tests.support.certs import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = make_pki(tmp_path_factory.mktemp("pki"), ["hub", "other"])
    (d / "garbage.pem").write_text("not a certificate\n")
    key = ec.generate_private_key(ec.SECP256R1())
    (d / "encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    return d


def test_a_good_mutual_tls_setup_builds_a_verifying_context(pki: Path) -> None:
    ctx = tls_context(TLSFiles(pki / "ca.crt", pki / "hub.crt", pki / "hub.key"), HUB_TLS)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    insecure = tls_context(TLSFiles(pki / "ca.crt", insecure=True), HUB_TLS)
    assert insecure.verify_mode == ssl.CERT_REQUIRED and not insecure.check_hostname
    # the device's config table is accepted as it is (one implementation for both sides)
    dev = tls_context(TLSConfig(ca_file=pki / "ca.crt"), DEVICE_TLS)
    assert dev.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (lambda d: TLSFiles(d / "missing.crt"), "--mqtt-tls-ca {d}/missing.crt: cannot read"),
        (lambda d: TLSFiles(d), "--mqtt-tls-ca {d}: cannot read"),  # a folder
        (lambda d: TLSFiles(d / "garbage.pem"), "--mqtt-tls-ca {d}/garbage.pem: not a PEM CA"),
        (
            lambda d: TLSFiles(d / "ca.crt", cert_file=d / "hub.crt"),
            "--mqtt-tls-cert needs --mqtt-tls-key: mutual TLS takes a certificate and its key",
        ),
        (
            lambda d: TLSFiles(d / "ca.crt", key_file=d / "hub.key"),
            "--mqtt-tls-key needs --mqtt-tls-cert",
        ),
        (
            lambda d: TLSFiles(d / "ca.crt", d / "hub.crt", d / "nope.key"),
            "--mqtt-tls-key {d}/nope.key: cannot read",
        ),
        (
            lambda d: TLSFiles(d / "ca.crt", d / "hub.crt", d / "other.key"),
            "--mqtt-tls-key {d}/other.key: not the private key of --mqtt-tls-cert {d}/hub.crt",
        ),
        (
            lambda d: TLSFiles(d / "ca.crt", d / "garbage.pem", d / "hub.key"),
            "--mqtt-tls-cert {d}/garbage.pem / --mqtt-tls-key {d}/hub.key: not a PEM",
        ),
        (
            lambda d: TLSFiles(d / "ca.crt", d / "hub.crt", d / "encrypted.key"),
            "--mqtt-tls-key {d}/encrypted.key: the key is encrypted",
        ),
    ],
)
def test_a_bad_tls_file_is_one_line_naming_the_flag(
    pki: Path, files: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        tls_context(files(pki), HUB_TLS)  # type: ignore[operator]  # the lambdas above
    msg = str(err.value)
    assert msg.startswith(expected.format(d=pki)), msg
    assert "\n" not in msg


def test_the_device_side_names_its_config_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^sync\.tls\.ca_file .*: cannot read"):
        tls_context(TLSConfig(ca_file=tmp_path / "ca.crt"), DEVICE_TLS)


def test_password_files(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("  hunter2\n")
    assert read_secret_file(f, "--mqtt-password-file") == "hunter2"
    f.write_text("\n")
    with pytest.raises(ConfigError, match=r"^--mqtt-password-file .*: the file is empty"):
        read_secret_file(f, "--mqtt-password-file")
    with pytest.raises(ConfigError, match=r"^--mqtt-password-file .*/nope: cannot read"):
        read_secret_file(tmp_path / "nope", "--mqtt-password-file")


def test_what_a_failed_handshake_means() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    why, permanent = tls_failure(verify, HUB_TLS)
    assert permanent and "--mqtt-tls-ca" in why and "unable to get local issuer" in why
    why, permanent = tls_failure(ssl.SSLEOFError(8, "EOF occurred"), HUB_TLS)
    assert not permanent  # a connection cut mid-handshake: retry
    why, permanent = tls_failure(TimeoutError("timed out"), HUB_TLS)
    assert not permanent
