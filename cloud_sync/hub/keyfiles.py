"""The model-signing key pair on disk: ``edge-hub keys generate`` writes it, ``sign-model``
reads the private half.

The private key is PKCS#8 PEM, mode 0600, encrypted when ``EDGE_HUB_KEY_PASSPHRASE`` is
set; it can also come from ``EDGE_HUB_SIGNING_KEY`` (the PEM text itself, e.g. a CI
secret). The public key is base64 of the 32 raw bytes: what a device's
``sync.model_public_key`` takes. Key material never appears in a message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync import signing
from cloud_sync.hub.errors import HubError

KEY_ENV = "EDGE_HUB_SIGNING_KEY"
PASSPHRASE_ENV = "EDGE_HUB_KEY_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
DEFAULT_NAME = "model-signing"
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class SigningKeyError(HubError):
    """A signing key is missing, unreadable, of the wrong type, or would be overwritten."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    public_b64: str


def toml_line(public_b64: str) -> str:
    """The line to paste under a device config's ``[sync]``."""
    return f'model_public_key = "{public_b64}"'


def write_key_pair(
    out_dir: Path, name: str = DEFAULT_NAME, *, force: bool = False, passphrase: str | None = None
) -> KeyPair:
    """A fresh Ed25519 pair as ``out_dir/NAME.pem`` (0600) and ``out_dir/NAME.pub``; an
    existing file is kept (``SigningKeyError``) unless ``force``."""
    if not name or set(name) - _NAME_OK or name.startswith("."):
        raise SigningKeyError(f"--name: {name!r} must be letters, digits, _ . - (a file name stem)")
    priv_path, pub_path = out_dir / f"{name}.pem", out_dir / f"{name}.pub"
    if not force:
        for p in (priv_path, pub_path):
            if p.exists() or p.is_symlink():
                raise SigningKeyError(
                    f"{p}: already exists; keep it, pick another --name, or pass --force to "
                    "replace it (devices that trust the old key then refuse new updates)"
                )
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningKeyError(f"{out_dir}: cannot create the folder ({exc.strerror})") from None
    if not out_dir.is_dir():
        raise SigningKeyError(f"{out_dir}: not a folder; pass --out DIR")
    key, pub = signing.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_atomic(priv_path, pem, 0o600)
    _write_atomic(pub_path, (pub + "\n").encode(), 0o644)
    return KeyPair(priv_path, pub_path, pub)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """tmp (created with ``mode``: never briefly world-readable) + fsync + rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    except OSError as exc:
        raise SigningKeyError(f"{path.parent}: cannot write there ({exc.strerror})") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot write the key ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
    with contextlib.suppress(OSError):  # the rename is durable once the folder is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def load_private_key(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Ed25519PrivateKey:
    """The key from ``path`` (``--key``), else from ``$EDGE_HUB_SIGNING_KEY``; errors name
    where it came from, never what it holds. ``warn`` hears of a key file others can read."""
    env = os.environ if env is None else env
    passphrase = env.get(PASSPHRASE_ENV) or None
    if path is None:
        if not env.get(KEY_ENV):
            raise SigningKeyError(
                f"no signing key: pass --key FILE.pem or set {KEY_ENV} to the PEM text "
                "(edge-hub keys generate makes one)"
            )
        return parse_private_key(env[KEY_ENV].encode(), f"${KEY_ENV}", passphrase)
    origin = f"--key {path}"
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SigningKeyError(
            f"{origin}: no such file; make a key pair with: edge-hub keys generate --out DIR"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"{origin}: cannot read it ({exc.strerror})") from None
    key = parse_private_key(data, origin, passphrase)
    if warn is not None and stat.S_ISREG(mode) and mode & 0o077:
        warn(f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    return key


def parse_private_key(data: bytes, origin: str, passphrase: str | None) -> Ed25519PrivateKey:
    text = data.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY") or _is_raw_public(text):
        raise SigningKeyError(
            f"{origin}: this is a public key; sign with the private key (the .pem that "
            "edge-hub keys generate wrote beside it)"
        )
    if not text.startswith(b"-----BEGIN"):
        raise SigningKeyError(
            f"{origin}: not a PEM private key; give the .pem from edge-hub keys generate"
        )
    try:
        key = serialization.load_pem_private_key(text, passphrase.encode() if passphrase else None)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        if passphrase:
            raise SigningKeyError(
                f"{origin}: the key is not encrypted; unset {PASSPHRASE_ENV}"
            ) from None
        raise SigningKeyError(f"{origin}: the key is encrypted; set {PASSPHRASE_ENV}") from None
    except ValueError:
        hint = f" or {PASSPHRASE_ENV} is wrong" if passphrase else ""
        raise SigningKeyError(f"{origin}: not a readable PEM private key{hint}") from None
    except UnsupportedAlgorithm:
        raise SigningKeyError(f"{origin}: unsupported private key; use an Ed25519 key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"{origin}: not an Ed25519 key ({_kind(key)}); devices verify Ed25519 only "
            "(edge-hub keys generate makes one)"
        )
    return key


def _kind(key: object) -> str:
    kinds = ((rsa.RSAPrivateKey, "RSA"), (ec.EllipticCurvePrivateKey, "ECDSA"),
             (dsa.DSAPrivateKey, "DSA"), (ed448.Ed448PrivateKey, "Ed448"),
             (x25519.X25519PrivateKey, "X25519"))  # fmt: skip
    return next((name for t, name in kinds if isinstance(key, t)), type(key).__name__)


def _is_raw_public(text: bytes) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (ValueError, binascii.Error):
        return False
