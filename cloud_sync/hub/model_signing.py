"""``edge-hub sign-model``: a model bundle's manifest, made into a signed over-the-air update.

The bundle's manifest gains ``update`` (``edge.models.manifest.UpdateInfo``: detector,
counter, issued and expiry times, rollback, devices), is validated as a ``Manifest``, and is
signed as the exact JSON text that travels in the ``model`` command (docs/sync.md,
docs/security.md). The output is that command's args without the url:
``{"detector", "sha256", "manifest", "signature"}``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from cloud_sync import signing
from cloud_sync.hub.errors import HubError
from edge.compat import UTC, tomllib
from edge.errors import IntegrityError, ManifestError
from edge.models import zoo
from edge.models.manifest import (
    UPDATE_MAX_DEVICES,
    Manifest,
    UpdateInfo,
    format_validation_error,
    parse_manifest,
)
from edge.wire import DEVICE_ID_RE, INT64_MAX, TS_MAX

SIGNED_KEYS = ("detector", "sha256", "manifest", "signature")
"""The ``model`` command's args that ``sign-model`` writes (``send-model`` adds ``url``)."""
MANIFEST_MAX_CHARS = 256 * 1024  # cloud_sync.commands.ModelArgs.manifest
DEFAULT_EXPIRY = "7d"
_DETECTOR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # UpdateInfo.detector
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"\s*(\d{1,9})\s*([smhdw])\s*")


class SignError(HubError):
    """A sign-model option is invalid or the bundle cannot be signed."""


def parse_duration(text: str, flag: str = "--expires-in") -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` → a positive ``timedelta``."""
    m = _DURATION_RE.fullmatch(text)
    if m is None or int(m.group(1)) == 0:
        raise SignError(
            f"{flag}: {text!r} is not a duration; use a whole number > 0 and a unit: "
            "90s, 30m, 12h, 7d, 2w"
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True, slots=True)
class Bundle:
    """A manifest as written (``raw``), validated (``manifest``), and its model file."""

    raw: dict[str, Any]
    manifest: Manifest
    model: Path
    origin: str


def load_bundle(ref: str) -> Bundle:
    """A bundle folder (``manifest.json``/``.toml`` + model file, e.g. what edge-convert
    writes), a manifest file, or a pulled zoo model's name; the file's sha256 is checked."""
    path = Path(ref)
    given_file: str | None = None
    if path.is_dir():
        found = [path / n for n in ("manifest.json", "manifest.toml") if (path / n).is_file()]
        if not found:
            raise SignError(f"{path}: folder has no manifest.json; give an edge-convert bundle")
        mpath = found[0]
    elif path.suffix.lower() in {".onnx", ".tflite"} and path.is_file():
        mpath = path.parent / "manifest.json"  # a model file: its bundle's manifest
        given_file = path.name
        if not mpath.is_file():
            raise SignError(f"{path}: no manifest.json beside it; give the bundle folder")
    elif path.suffix.lower() in {".json", ".toml"} or path.exists():
        mpath = path
    elif ref in zoo.zoo():
        mpath = zoo.ZOO_DIR / f"{ref}.json"
    else:
        raise SignError(
            f"{ref}: no such bundle folder or manifest, and not a zoo model "
            f"({', '.join(sorted(zoo.zoo()))})"
        )
    raw = _read_raw(mpath)
    if "update" in raw:  # signing a signed manifest again: the old update is replaced
        raw = {k: v for k, v in raw.items() if k != "update"}
    manifest = parse_manifest(raw, str(mpath))
    if Path(manifest.file).name != manifest.file or manifest.file in {".", ".."}:
        raise SignError(
            f"{mpath}: file: {manifest.file!r} must be a plain file name beside the manifest "
            "(a device writes it into its own bundle folder)"
        )
    if given_file is not None and given_file != manifest.file:
        raise SignError(f"{mpath}: names file {manifest.file}, not {given_file}")
    if mpath.parent == zoo.ZOO_DIR:
        model = zoo.cached_file(manifest)
        if not model.is_file():
            raise SignError(f"{ref}: not pulled yet; run `edge models pull {ref}` first")
        # a converted (npm) zoo model is signed with the hash of the file converted here,
        # which its cached manifest records (conversions are not byte-identical)
        manifest = zoo.installed(manifest)
        raw = {**raw, "sha256": manifest.sha256}
    else:
        model = mpath.parent / manifest.file
        if not model.is_file():
            raise SignError(f"{mpath}: file: {manifest.file} not found beside the manifest")
    digest = zoo.sha256_file(model)  # always re-hashed: no cached stamp is trusted for signing
    if digest != manifest.sha256:
        raise IntegrityError(
            f"{model}: sha256 is {digest[:16]}…, {mpath.name} pins {manifest.sha256[:16]}…; "
            "the file was changed or the manifest is stale: convert again (edge-convert) "
            "or fix sha256 in the manifest"
        )
    return Bundle(raw, manifest, model, str(mpath))


def _read_raw(mpath: Path) -> dict[str, Any]:
    try:
        text = mpath.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignError(f"{mpath}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignError(f"{mpath}: cannot read the manifest ({exc})") from None
    try:
        data: Any = tomllib.loads(text) if mpath.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{mpath}: not valid JSON/TOML ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{mpath}: a manifest must be an object with name, file, sha256, ...")
    return data


def check_options(detector: str, counter: int, devices: list[str] | None) -> None:
    """Refuse what a device would refuse, naming the flag."""
    if not _DETECTOR_RE.fullmatch(detector):
        raise SignError(
            f"--detector: {detector!r} must be the device config's [detectors.NAME] name "
            "(letters, digits, _ . -; at most 64)"
        )
    if not 1 <= counter <= INT64_MAX:
        raise SignError(f"--counter: {counter} must be 1..{INT64_MAX} (default: unix time)")
    for d in devices or []:
        if not DEVICE_ID_RE.fullmatch(d):
            raise SignError(f"--device: {d!r} is not a device id (letters, digits, _ . -)")
    if devices is not None and len(devices) > UPDATE_MAX_DEVICES:
        raise SignError(f"--device: {len(devices)} devices; at most {UPDATE_MAX_DEVICES}")


def sign_bundle(
    bundle: Bundle,
    key: Ed25519PrivateKey,
    *,
    detector: str,
    counter: int,
    expires_in: timedelta,
    rollback: bool = False,
    devices: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The signed ``model`` command args (no url) for ``bundle``."""
    check_options(detector, counter, devices)
    issued = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    expires = issued + expires_in
    if expires >= TS_MAX:
        raise SignError(f"--expires-in: expiry {expires:%Y-%m-%d} is past 2100-01-01; shorten it")
    try:
        update = UpdateInfo(
            detector=detector,
            counter=counter,
            issued_at=issued,
            expires_at=expires,
            rollback=rollback,
            devices=sorted(set(devices)) if devices else None,
        )
    except ValidationError as exc:
        raise SignError(format_validation_error("update", exc)) from None
    raw = {**bundle.raw, "update": update.model_dump(mode="json", exclude_none=True)}
    try:
        text = json.dumps(raw, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{bundle.origin}: cannot be written as JSON ({exc})") from None
    signed = parse_manifest(json.loads(text), f"{bundle.origin} (signed)")
    assert signed.update == update and signed.sha256 == bundle.manifest.sha256
    if len(text) > MANIFEST_MAX_CHARS:
        raise SignError(
            f"{bundle.origin}: the manifest is {len(text)} characters; a device takes at most "
            f"{MANIFEST_MAX_CHARS} (drop build details from it)"
        )
    signature = signing.sign(key, text.encode())
    pub = key.public_key()
    signing.verify(pub, text.encode(), signature)  # what a device with this key will do
    return {"detector": detector, "sha256": signed.sha256, "manifest": text,
            "signature": signature}  # fmt: skip


def read_signed(path: Path) -> dict[str, str]:
    """A ``sign-model`` output file (``-``: stdin), checked for the four string fields."""
    origin = "stdin" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if origin == "stdin" else path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignError(f"{origin}: no such file; make it with edge-hub sign-model") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignError(f"{origin}: cannot read it ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SignError(
            f"{origin}: not JSON ({exc}); give the file edge-hub sign-model wrote"
        ) from None
    if not isinstance(doc, dict):
        raise SignError(f"{origin}: not a JSON object; give the file edge-hub sign-model wrote")
    missing = [k for k in SIGNED_KEYS if not isinstance(doc.get(k), str) or not doc[k]]
    extra = sorted(set(doc) - set(SIGNED_KEYS))
    if missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"
        raise SignError(f"{origin}: {what}; expected exactly {', '.join(SIGNED_KEYS)}")
    return {k: doc[k] for k in SIGNED_KEYS}


def check_signed(
    doc: dict[str, str], origin: str, devices: list[str], now: datetime | None = None
) -> UpdateInfo:
    """What a device would refuse before a download, said here before anything is sent:
    a manifest that does not parse or pin ``sha256``, another detector, an expired
    update, a device the update does not name."""
    try:
        data = json.loads(doc["manifest"])
    except json.JSONDecodeError as exc:
        raise SignError(f"{origin}: manifest: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SignError(f"{origin}: manifest: not a JSON object")
    m = parse_manifest(data, f"{origin}: manifest")
    if m.update is None:
        raise SignError(f"{origin}: manifest has no update; sign it with edge-hub sign-model")
    if m.sha256 != doc["sha256"]:
        raise SignError(f"{origin}: sha256 differs from the manifest's; sign it again")
    if m.update.detector != doc["detector"]:
        raise SignError(
            f"{origin}: detector {doc['detector']!r} differs from the signed "
            f"{m.update.detector!r}; sign it again"
        )
    t = now or datetime.now(UTC)
    if t >= m.update.expires_at:
        raise SignError(
            f"{origin}: the update expired at {m.update.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
            "sign it again (edge-hub sign-model --expires-in …)"
        )
    if m.update.devices is not None:
        outside = [d for d in devices if d not in m.update.devices]
        if outside:
            raise SignError(
                f"--device: {', '.join(outside)} not among the devices the update was signed "
                f"for ({', '.join(m.update.devices)}); sign it again with --device"
            )
    return m.update
