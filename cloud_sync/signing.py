"""Ed25519 signatures over model manifests: the hub signs, the device verifies.

A public key is given as base64 of the 32 raw bytes or as a PEM block; a
signature is base64 of the 64 raw bytes.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import ConfigError, IntegrityError


def load_public_key(text: str, origin: str = "sync.model_public_key") -> Ed25519PublicKey:
    """Parse base64 raw (32 bytes) or PEM; errors name ``origin``."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"{origin}: the PEM key is not Ed25519; use an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"{origin}: not an Ed25519 public key; give base64 of the 32 raw bytes or a PEM block"
        ) from None


def _signature_bytes(signature_b64: str) -> bytes:
    try:
        return base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        raise IntegrityError(
            "signature: not base64; send base64 of the 64-byte Ed25519 signature"
        ) from None


def verify(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> None:
    """Raise ``IntegrityError`` unless ``signature_b64`` signs ``data`` under ``key``."""
    sig = _signature_bytes(signature_b64)
    try:
        key.verify(sig, data)
    except InvalidSignature:
        raise IntegrityError(
            "signature: does not match the manifest under sync.model_public_key; "
            "sign the manifest bytes with the hub's key"
        ) from None


def generate() -> tuple[Ed25519PrivateKey, str]:
    """A fresh key pair; the public half as base64 raw bytes (for a device config)."""
    priv = Ed25519PrivateKey.generate()
    return priv, public_b64(priv)


def public_b64(priv: Ed25519PrivateKey) -> str:
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(priv: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(priv.sign(data)).decode()


def load_public_keys(
    value: str | list[str] | None, origin: str = "sync.model_public_key"
) -> list[Ed25519PublicKey]:
    """One key or a list (key rotation, docs/security.md); errors name the key's index."""
    if value is None:
        return []
    if isinstance(value, str):
        return [load_public_key(value, origin)]
    return [load_public_key(text, f"{origin}[{i}]") for i, text in enumerate(value)]


def verify_any(keys: list[Ed25519PublicKey], data: bytes, signature_b64: str) -> int:
    """The index of the first of ``keys`` that ``signature_b64`` verifies ``data`` under;
    ``IntegrityError`` if none does (or ``keys`` is empty)."""
    if not keys:
        raise IntegrityError(
            "signature: this device has no sync.model_public_key; its owner adds the key "
            "that signs model updates to the device config"
        )
    sig = _signature_bytes(signature_b64)
    for i, key in enumerate(keys):
        try:
            key.verify(sig, data)
        except InvalidSignature:
            continue
        return i
    raise IntegrityError(
        f"signature: does not match the manifest under any of the {len(keys)} key(s) in "
        "sync.model_public_key; sign the manifest bytes with a key the device's owner configured"
    )
