"""TFLite output (FP32, FP16, INT8, full-integer INT8) through onnx2tf.

onnx2tf pins TensorFlow 2.19, numpy 1.26, protobuf 4.25 and onnx 1.19, which
cannot share edgewise's environment, so it runs from an isolated tool venv that
is created on first use (``~/.cache/edgewise/tools/onnx2tf``, ~2.6 GB from PyPI).
Two traps handled here: onnx2tf downloads a calibration sample for 3-channel
image inputs unless ``calibration_image_sample_data_20x128x128x3_float32.npy``
is in its working directory, and it fails on dynamic batch (shapes are fixed first).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from converters.errors import ConversionError, ToolUnavailableError
from edge.models.zoo import edgewise_home
from edge.profiles import Recipe

log = logging.getLogger(__name__)

ONNX2TF_REQUIREMENT = "onnx2tf==1.29.24"
_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def tool_dir() -> Path:
    return edgewise_home() / "tools" / "onnx2tf"


def onnx2tf_exe() -> Path:
    return tool_dir() / "bin" / "onnx2tf"


def ensure_onnx2tf(*, install: bool = True) -> Path:
    """The onnx2tf executable, building its tool venv first when ``install``."""
    exe, stamp = onnx2tf_exe(), tool_dir() / ".installed"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == ONNX2TF_REQUIREMENT:
        return exe
    if not install:
        raise ToolUnavailableError(f"onnx2tf is not installed in {tool_dir()}")
    log.warning("creating the onnx2tf tool environment in %s (~2.6 GB, once)", tool_dir())
    steps = [
        [sys.executable, "-m", "venv", str(tool_dir())],
        [str(tool_dir() / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         ONNX2TF_REQUIREMENT],
    ]  # fmt: skip
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  our argv, no shell
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ToolUnavailableError(
                f"cannot build the onnx2tf tool environment in {tool_dir()} ({tail}); "
                "check the network to PyPI and free disk space (~2.6 GB)"
            )
    stamp.write_text(ONNX2TF_REQUIREMENT)
    return exe


def _output_name(stem: str, recipe: Recipe) -> str:
    if recipe.precision == "fp32":
        return f"{stem}_float32.tflite"
    if recipe.precision == "fp16":
        return f"{stem}_float16.tflite"
    if recipe.full_integer:
        return f"{stem}_full_integer_quant.tflite"
    return f"{stem}_integer_quant.tflite"


def onnx2tf_name(name: str) -> str:
    """A tensor name as onnx2tf spells it: ``:`` becomes ``__`` (TF.js/tf2onnx names such as
    nanodet-m's ``input_1:0``); ``-cind`` must use that spelling or onnx2tf raises KeyError."""
    return name.replace(":", "__")


def _vector(values: list[float]) -> str:
    return "[[[[" + ",".join(f"{v:g}" for v in values) + "]]]]"


def convert(
    onnx_path: Path,
    out_dir: Path,
    recipe: Recipe,
    input_name: str,
    calibration_nhwc: npt.NDArray[np.float32] | None,
) -> Path:
    """Convert a static-shape ONNX model; ``calibration_nhwc`` holds model-ready NHWC inputs."""
    exe = ensure_onnx2tf()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), "-i", str(onnx_path), "-o", str(out_dir), "-b", "1", "-coion"]
    if recipe.precision == "int8":
        if calibration_nhwc is None or not len(calibration_nhwc):
            raise ConversionError("INT8 TFLite needs calibration inputs")
        calib = out_dir / "calibration.npy"
        np.save(calib, calibration_nhwc.astype(np.float32))
        channels = int(calibration_nhwc.shape[-1])
        # the tensors are already normalized by the manifest's pre-processing
        cmd += ["-oiqt", "-qt", "per-channel" if recipe.per_channel else "per-tensor",
                "-cind", onnx2tf_name(input_name), str(calib), _vector([0.0] * channels),
                _vector([1.0] * channels)]  # fmt: skip
        if recipe.full_integer:
            cmd += ["-iqd", recipe.activation_type, "-oqd", recipe.activation_type]
    # onnx2tf fetches this sample from the internet for 3-channel inputs unless it is present
    np.save(out_dir / _SAMPLE, np.zeros((20, 128, 128, 3), dtype=np.float32))
    log.info("running onnx2tf: %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True, check=False)  # noqa: S603  no shell
    result = out_dir / _output_name(onnx_path.stem, recipe)
    if proc.returncode != 0 or not result.is_file():
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "rror" in ln]
        raise ConversionError(
            f"onnx2tf failed on {onnx_path.name} (exit {proc.returncode}): "
            f"{(lines or ['no error line'])[-1].strip()[:300]}"
        )
    restore_output_names(result, onnx_path)
    return result


# run by the tool venv's python: rename and reorder the subgraph's outputs in the flatbuffer
_RENAME = """
import json, sys
from tensorflow.lite.tools import flatbuffer_utils as fu
path, order, names = sys.argv[1], *json.loads(sys.argv[2])
model = fu.read_model(path)
sg = model.subgraphs[0]
sg.outputs = [sg.outputs[i] for i in order]
for index, name in zip(sg.outputs, names):
    sg.tensors[index].name = name.encode()
fu.write_model(model, path)
"""


def _nhwc(shape: list[int]) -> list[int]:
    return [shape[0], *shape[2:], shape[1]] if len(shape) == 4 else shape


def restore_output_names(tflite_path: Path, onnx_path: Path) -> None:
    """Give the TFLite outputs the ONNX outputs' names and order. onnx2tf without ``flatc``
    (a GitHub download) names them ``PartitionedCall:N`` in its own order, which the
    manifest's decoder (nanodet-m: six outputs by name) cannot find. Outputs are matched
    by shape (NCHW or its NHWC form); shapes that do not tell them apart are an error."""
    import onnx

    from edge.runtime import BackendOptions, load_backend

    graph = onnx.load(str(onnx_path)).graph
    want = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in graph.output]
    b = load_backend(tflite_path, BackendOptions(threads=1))
    try:
        have = [(o.name, list(o.shape)) for o in b.outputs]
    finally:
        b.close()
    if [n for n, _ in have] == [n for n, _ in want]:
        return
    order: list[int] = []
    for name, shape in want:
        hits = [i for i, (_, s) in enumerate(have) if s in (shape, _nhwc(shape))]
        if len(hits) != 1 or len(have) != len(want):
            raise ConversionError(
                f"onnx2tf renamed the outputs of {onnx_path.name} and their shapes do not tell "
                f"them apart (ONNX output {name!r} {shape}: {len(hits)} TFLite outputs of that "
                "shape); give the ONNX outputs distinct shapes or convert to ONNX instead"
            )
        order.append(hits[0])
    arg = json.dumps([order, [n for n, _ in want]])
    python = tool_dir() / "bin" / "python"
    proc = subprocess.run(  # noqa: S603  our argv, no shell
        [str(python), "-c", _RENAME, str(tflite_path), arg],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConversionError(f"cannot restore the output names of {tflite_path.name} ({tail})")
