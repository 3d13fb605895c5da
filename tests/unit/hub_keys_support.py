"""Helpers for the ``edge-hub keys`` / ``sign-model`` / ``send-model`` unit tests: a tiny
bundle (a model file and its manifest, as edge-convert writes them) and a CLI runner."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.hub.cli import main


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    rc = main(list(argv))
    got = capsys.readouterr()
    return Result(rc, got.out, got.err)


def manifest_doc(sha256: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "tiny-det", "version": "2.0", "task": "detect", "format": "onnx",
        "file": "tiny-det.onnx", "sha256": sha256, "license": "MIT",
        "input": {"kind": "image", "width": 128, "height": 128},
        "decoder": {"type": "ssd_anchor", "num_boxes": 896},
        "labels": ["face"], "build": {"profile": "x86-64-avx2"}, **extra,
    }  # fmt: skip


def make_bundle(folder: Path, payload: bytes = b"not really onnx, but hashed") -> Path:
    """``folder/manifest.json`` + ``folder/tiny-det.onnx``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny-det.onnx").write_bytes(payload)
    doc = manifest_doc(hashlib.sha256(payload).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2))
    return folder


def keys(capsys: pytest.CaptureFixture[str], folder: Path, name: str = "k") -> tuple[Path, str]:
    """``edge-hub keys generate``: the private key's path and the public key (base64)."""
    r = run(capsys, "keys", "generate", "--out", str(folder), "--name", name, "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    return Path(doc["private_key"]), str(doc["public_key"])
