"""Signed over-the-air model updates for tests: a manifest with an ``update`` section made
from a real zoo manifest, the ``model`` command's args, and a folder served over HTTP."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync import signing
from edge.compat import UTC
from edge.models import zoo


def update_manifest(
    base: str,
    *,
    detector: str,
    counter: int,
    version: str | None = None,
    issued_at: datetime | None = None,
    expires_at: datetime | None = None,
    rollback: bool = False,
    devices: list[str] | None = None,
    **fields: Any,
) -> str:
    """The JSON text of zoo model ``base``'s manifest (``fields`` replace some of its
    fields) with an ``update`` section: issued now, expiring in an hour by default."""
    now = datetime.now(UTC)
    doc = zoo.get(base).model_dump(mode="json", exclude_none=True)
    doc.pop("source", None)  # a bundle, not a zoo entry
    if version is not None:
        doc["version"] = version
    doc.update(fields)
    update: dict[str, Any] = {
        "detector": detector,
        "counter": counter,
        "issued_at": (issued_at or now).isoformat().replace("+00:00", "Z"),
        "expires_at": (expires_at or now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "rollback": rollback,
    }
    if devices is not None:
        update["devices"] = devices
    doc["update"] = update
    return json.dumps(doc)


def model_args(
    priv: Ed25519PrivateKey, manifest: str, url: str, *, detector: str | None = None
) -> dict[str, Any]:
    """The ``model`` command's args for ``manifest`` (JSON text), signed with ``priv``."""
    doc = json.loads(manifest)
    return {
        "detector": detector or doc["update"]["detector"],
        "url": url,
        "sha256": doc["sha256"],
        "manifest": manifest,
        "signature": signing.sign(priv, manifest.encode()),
    }


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free 127.0.0.1 port; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish_zoo_file(name: str, folder: Path) -> str:
    """Copy zoo model ``name``'s file (pulled into the zoo cache) into ``folder``; its name."""
    m = zoo.get(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / m.file).write_bytes(zoo.pull(m).read_bytes())
    return m.file


def make_bundle(
    models_dir: Path, priv: Ed25519PrivateKey, manifest: str, *, model_file: Path | None = None
) -> Path:
    """A bundle folder as the ``model`` command leaves it: ``<name>-<sha12>`` holding the
    signed manifest bytes, ``manifest.sig`` and the model file (default: the zoo cache's
    file of the zoo model whose sha256 the manifest pins)."""
    doc = json.loads(manifest)
    bundle = models_dir / f"{doc['name']}-{doc['sha256'][:12]}"
    bundle.mkdir(parents=True)
    if model_file is None:
        model_file = next(zoo.pull(m) for m in zoo.zoo().values() if m.sha256 == doc["sha256"])
    (bundle / doc["file"]).write_bytes(model_file.read_bytes())
    (bundle / "manifest.json").write_bytes(manifest.encode())
    (bundle / "manifest.sig").write_text(signing.sign(priv, manifest.encode()) + "\n")
    return bundle
