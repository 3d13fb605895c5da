"""sha256 of a file, read in blocks."""

from __future__ import annotations

from pathlib import Path


def sha256_file(path: Path) -> str:
    import hashlib  # here: most runs only compare a stamp (edge.models.zoo), hashing nothing

    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
