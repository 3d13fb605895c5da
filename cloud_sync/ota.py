"""The ``model`` command: a signed over-the-air model update (docs/security.md).

Args ``{detector, url, sha256, manifest, signature}``: ``manifest`` is the JSON text of
an ``edge.models.manifest.Manifest`` with an ``update`` section, ``signature`` base64
Ed25519 over its exact UTF-8 bytes. Every check runs before anything touches the file
system, in this order: the args' shape; a key is configured (``sync.model_public_key``,
one key or a list while rotating); the signature verifies under one of them; the
manifest parses (name pattern and length, ``file`` a plain file name, its ``sha256`` the
one in the args); then ``edge.models.update_check`` (``update`` present, for this
detector and device, issued, not expired, counter above the last one accepted, version
not older unless ``rollback``); the bundle folder resolves inside the models folder.

Only then is the file downloaded (``cloud_sync.download``: deadline, minimum rate, size
cap) into a staging folder inside ``<data_dir>/models``, hashed, and put beside the signed
manifest bytes
(``manifest.json``, byte for byte) and the signature (``manifest.sig``) in
``<data_dir>/models/<name>-<sha256[:12]>``; ``DeviceControl.swap_model`` then checks
it again, swaps and records it durably (the OTA record, ``edge.models.ota_record``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cloud_sync import signing
from edge.compat import UTC
from edge.control import DeviceControl
from edge.errors import ConfigError, IntegrityError
from edge.models.manifest import Manifest, parse_manifest
from edge.models.ota_record import (
    ASIDE_PREFIX,
    BUNDLE_MANIFEST,
    BUNDLE_SIGNATURE,
    STAGING_PREFIX,
)
from edge.models.update_check import check_update

Downloader = Callable[[str, Path], str]
"""Fetch ``url`` into ``dest`` within the command's limits (``cloud_sync.download``, bound
by ``CommandHandler``); the file's sha256."""


class ModelArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    detector: Annotated[str, Field(min_length=1, max_length=128)]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    manifest: Annotated[str, Field(min_length=2, max_length=256 * 1024)]
    signature: Annotated[str, Field(min_length=1, max_length=256)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ModelUpdater:
    """Runs ``model`` commands against a ``DeviceControl``; bundles go under ``models_dir``."""

    def __init__(
        self,
        control: DeviceControl,
        models_dir: Path,
        *,
        public_key: str | list[str] | None,
        download: Downloader,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.control = control
        self.models_dir = models_dir
        self._keys = signing.load_public_keys(public_key)  # ConfigError naming the bad key
        self._download = download
        self._clock = clock

    def __call__(self, raw: dict[str, Any]) -> dict[str, Any]:
        args = ModelArgs.model_validate(raw)
        manifest, bundle = self.check(args)
        aside = self._fetch(args, manifest, bundle)
        try:
            result = self.control.swap_model(args.detector, bundle)
        except BaseException:
            shutil.rmtree(bundle, ignore_errors=True)
            if aside is not None:
                aside.rename(bundle)  # what was there before (a running bundle, perhaps)
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return {"bundle": str(bundle), **result}

    def check(self, args: ModelArgs) -> tuple[Manifest, Path]:
        """Every check that needs no download, touching nothing: the manifest and the
        bundle folder it would go to. ``EdgeError`` naming the first check that fails."""
        if not self._keys:
            raise IntegrityError(
                "model: this device has no sync.model_public_key; its owner adds the key that "
                "signs model updates to the device config (docs/security.md)"
            )
        data = args.manifest.encode()
        signing.verify_any(self._keys, data, args.signature)
        manifest = parse_signed_manifest(data, args.sha256)
        stats = self.control.stats()
        if stats.ota_error is not None:
            raise IntegrityError(
                f"model: refused while the OTA record is unusable: {stats.ota_error}"
            )
        running = stats.detectors.get(args.detector)
        if running is None:
            raise ConfigError(
                f"model: detector {args.detector!r} runs on no stream of this device; "
                f"have {sorted(stats.detectors)}"
            )
        check_update(
            manifest,
            detector=args.detector,
            device_id=stats.device_id,
            now=self._clock(),
            last_counter=running.counter,
            running_version=running.version,
        )
        return manifest, bundle_dir(self.models_dir, manifest)

    def _fetch(self, args: ModelArgs, manifest: Manifest, bundle: Path) -> Path | None:
        """Download into staging inside the models folder, then move it to ``bundle``; a
        folder already there is moved aside (returned) until the swap succeeds."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.models_dir))
        aside: Path | None = None
        try:
            digest = self._download(args.url, staging / manifest.file)
            if digest != args.sha256:
                raise IntegrityError(
                    f"model: downloaded file has sha256 {digest[:12]}…, "
                    f"the manifest pins {args.sha256[:12]}…"
                )
            (staging / BUNDLE_MANIFEST).write_bytes(args.manifest.encode())
            (staging / BUNDLE_SIGNATURE).write_text(args.signature + "\n", encoding="ascii")
            if bundle.exists() or bundle.is_symlink():
                aside = self.models_dir / f"{ASIDE_PREFIX}{uuid.uuid4().hex}"
                bundle.rename(aside)
            staging.rename(bundle)
        except BaseException:
            if aside is not None and not bundle.exists():
                aside.rename(bundle)
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return aside


def parse_signed_manifest(data: bytes, sha256: str) -> Manifest:
    """The signed manifest bytes as a ``Manifest`` whose file is a plain name and whose
    ``sha256`` is ``sha256``; ``ModelError`` naming the field otherwise."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"model: the signed manifest is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise IntegrityError("model: the signed manifest must be a JSON object (a Manifest)")
    manifest = parse_manifest(doc, "model: manifest")
    name = manifest.file
    if (
        Path(name).name != name
        or "\\" in name
        or name.startswith(".")
        or name in (BUNDLE_MANIFEST, BUNDLE_SIGNATURE)
    ):
        raise IntegrityError(
            f"model: manifest.file {name!r} must be a plain file name (no folders, not "
            f"hidden, not {BUNDLE_MANIFEST} or {BUNDLE_SIGNATURE})"
        )
    if manifest.sha256 != sha256:
        raise IntegrityError("model: the signed manifest's sha256 differs from args.sha256")
    return manifest


def bundle_dir(models_dir: Path, manifest: Manifest) -> Path:
    """``<models_dir>/<name>-<sha256[:12]>``, refused unless it resolves inside the models
    folder (the name pattern already forbids ``/`` and a leading ``.``; this holds even so,
    and against a symlink planted there)."""
    root = models_dir.resolve()
    bundle = root / f"{manifest.name}-{manifest.short_sha}"
    if bundle.resolve().parent != root:
        raise IntegrityError(
            f"model: the bundle folder for {manifest.name!r} resolves outside {root}; "
            "refused (remove what is at that path)"
        )
    return bundle
