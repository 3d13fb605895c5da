"""Turn what a user typed (a zoo name, a manifest path, a bundle folder) into a
verified model file plus its manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ModelError
from edge.models import zoo
from edge.models.manifest import Manifest, read_manifest

log = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.json", "manifest.toml")


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    manifest: Manifest
    path: Path
    origin: str  # what to name in messages: the zoo name or the manifest path


def resolve(ref: str, home: Path | None = None, *, pull_missing: bool = True) -> ResolvedModel:
    """Resolve ``ref``; zoo models missing from the cache are pulled when ``pull_missing``."""
    p = Path(ref)
    if p.is_dir():
        for name in MANIFEST_NAMES:
            if (p / name).is_file():
                return _from_manifest(p / name)
        raise ModelError(f"{p}: folder has no manifest.json or manifest.toml")
    if p.suffix.lower() in {".json", ".toml"}:
        return _from_manifest(p)
    if p.suffix.lower() in {".onnx", ".tflite"}:
        if not p.exists():
            raise ModelError(f"{p}: model file not found")
        for name in MANIFEST_NAMES:
            if (p.parent / name).is_file():
                m = read_manifest(p.parent / name)
                if m.file == p.name:
                    return _from_manifest(p.parent / name)
        raise ModelError(
            f"{p}: a bare model file has no decoder or input spec; write a manifest.json "
            "beside it (see docs/models.md, 'Bring your own model')"
        )
    if ref in zoo.zoo():
        m = zoo.get(ref)
        path = zoo.cached_file(m, home)
        if pull_missing:
            # pull() only verifies a cached file, and pulls again if its hash is wrong
            path = zoo.pull(m, home)
        elif not path.is_file():
            raise ModelError(f"{ref}: not pulled yet; run `edge models pull {ref}`")
        local = zoo.installed(m, home)  # a converted model: the hash of the file made here
        zoo.verify_file(path, local.sha256)
        return ResolvedModel(local, path, ref)
    zoo.get(ref)  # raises the "unknown model" error with the list of names
    raise AssertionError("unreachable")


def _from_manifest(path: Path) -> ResolvedModel:
    m = read_manifest(path)
    model = (path.parent / m.file).resolve()
    if not model.is_file():
        raise ModelError(f"{path}: file: {m.file} not found beside the manifest")
    zoo.verify_file(model, m.sha256)
    return ResolvedModel(m, model, str(path))
