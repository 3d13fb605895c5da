"""ai_edge_litert (in process) and tflite_runtime 2.14 (its own venv, numpy<2) give the
same BlazeFace outputs for the same input, both through edge's TFLiteBackend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from edge.detectors.preprocess import ImagePreprocessor
from edge.models.manifest import ImageInput
from edge.models.resolve import ResolvedModel
from edge.runtime.base import BackendOptions
from edge.runtime.tflite import TFLiteBackend

REPO = Path(__file__).resolve().parents[2]
VENV_NAME = "tflite-runtime-np1"  # under <edgewise home>/venvs, built once
PINS = ["numpy<2", "tflite-runtime==2.14.0"]
# Both are TFLite with XNNPACK on the same float model: only summation order may differ.
MAX_ABS_DIFF = 1e-5  # measured: 0.0 (bit-identical) on x86-64

RUNNER = """
import sys
import numpy as np
from pathlib import Path
from edge.runtime.base import BackendOptions
from edge.runtime.tflite import TFLiteBackend
b = TFLiteBackend(Path(sys.argv[1]), BackendOptions(threads=1), prefer="tflite_runtime")
assert b.library == "tflite_runtime", b.library
outs = b.run({b.inputs[0].name: np.load(sys.argv[2])})
np.savez(sys.argv[3], *outs, numpy=np.__version__)
"""


def tflite_runtime_python(home: Path) -> Path:
    """The cached venv's python; built once (atomically renamed into place)."""
    venv = home / "venvs" / VENV_NAME
    py = venv / "bin" / "python"
    if py.exists():
        return py
    venv.parent.mkdir(parents=True, exist_ok=True)
    tmp = venv.with_name(venv.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    proc = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", *PINS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        if "No matching distribution" in proc.stderr:
            pytest.skip(f"tflite-runtime 2.14.0 has no wheel for Python {sys.version_info[:2]}")
        raise RuntimeError(f"pip install {PINS} failed: {proc.stderr.strip()[-500:]}")
    try:
        tmp.rename(venv)
    except OSError:  # another run built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return py


@pytest.mark.slow
def test_litert_and_tflite_runtime_agree(
    zoo_model: Callable[[str], ResolvedModel], models_home: Path, tmp_path: Path
) -> None:
    model = zoo_model("blazeface-short")
    litert = TFLiteBackend(model.path, BackendOptions(threads=1), prefer="ai_edge_litert")
    assert litert.library == "ai_edge_litert"
    assert isinstance(model.manifest.input, ImageInput)
    pre = ImagePreprocessor(model.manifest.input, litert.inputs[0])
    rgb = np.asarray(skimage.data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]  # skimage is untyped
    tensor, _ = pre(np.ascontiguousarray(rgb[..., ::-1]))
    np.save(tmp_path / "input.npy", tensor)
    ours = litert.run({litert.inputs[0].name: tensor})

    py = tflite_runtime_python(models_home)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [str(py), "-c", RUNNER, str(model.path), str(tmp_path / "input.npy"),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = np.load(tmp_path / "out.npz")
    assert str(theirs["numpy"]).startswith("1."), "tflite_runtime 2.14 needs numpy<2"
    assert len(ours) == 2
    for i, out in enumerate(ours):
        other = theirs[f"arr_{i}"]
        assert other.shape == out.shape
        diff = float(np.max(np.abs(other.astype(np.float64) - out)))
        assert diff <= MAX_ABS_DIFF, f"output {i}: max abs diff {diff}"
    # the face's anchor scores clearly positive in both: the comparison is not of noise
    assert float(ours[1].max()) > 2.0
