"""TFLite output (FP32, FP16, INT8, full-integer INT8) through onnx2tf.

onnx2tf pins TensorFlow 2.19, numpy 1.26, protobuf 4.25 and onnx 1.19, which
cannot share edgewise's environment, so it runs from an isolated tool venv that
is created on first use (``~/.cache/edgewise/tools/onnx2tf``, ~2.6 GiB from PyPI).
Two traps handled here: onnx2tf downloads a calibration sample for 3-channel
image inputs unless ``calibration_image_sample_data_20x128x128x3_float32.npy``
is in its working directory, and it fails on dynamic batch (shapes are fixed first).
A recipe's ``float_stem_convs`` / ``float_output_convs`` (onnx2tf has no per-op exclusion)
quantize the saved_model onnx2tf writes with TensorFlow's own converter instead, those ops
denylisted through ``tf.lite.experimental.QuantizationDebugger``.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt

from converters.errors import ConversionError, ToolUnavailableError
from edge.errors import ZooError
from edge.models.tool_env import ensure_tool_env
from edge.models.zoo import edgewise_home
from edge.profiles import Recipe

log = logging.getLogger(__name__)

ONNX2TF_REQUIREMENT = "onnx2tf==1.29.24"
_ONNX2TF_BYTES = int(2.6 * 2**30)  # onnx2tf with TensorFlow and its dependencies
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
    try:
        ensure_tool_env(
            "onnx2tf", [ONNX2TF_REQUIREMENT], edgewise_home(),
            hint="check the network to PyPI and free disk space (~2.6 GiB)", size=_ONNX2TF_BYTES,
        )  # fmt: skip
    except ZooError as exc:
        raise ToolUnavailableError(str(exc)) from None
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
    if recipe.precision == "int8" and (calibration_nhwc is None or not len(calibration_nhwc)):
        raise ConversionError("INT8 TFLite needs calibration inputs")
    # with a float stem onnx2tf writes the float model and its saved_model; TF quantizes it
    stem_calib = (
        calibration_nhwc
        if (recipe.float_stem_convs or recipe.float_output_convs) and recipe.precision == "int8"
        else None
    )
    if recipe.precision == "int8" and calibration_nhwc is not None and stem_calib is None:
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
    result = out_dir / _output_name(
        onnx_path.stem,
        recipe.model_copy(update={"precision": "fp32"}) if stem_calib is not None else recipe,
    )
    if proc.returncode != 0 or not result.is_file():
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "rror" in ln]
        raise ConversionError(
            f"onnx2tf failed on {onnx_path.name} (exit {proc.returncode}): "
            f"{(lines or ['no error line'])[-1].strip()[:300]}"
        )
    if stem_calib is not None:
        result = quantize_with_float_layers(out_dir, stem_calib, recipe, onnx_path.stem)
    restore_output_names(result, onnx_path)
    return result


# run by the tool venv's python: INT8 (float I/O) of onnx2tf's saved_model with the stem (the
# ops before the (N+1)-th convolution) and optionally the output heads denylisted (in float)
_QUANTIZE = """
import json, sys
import numpy as np, tensorflow as tf
saved, calib, out, convs, heads, per_channel = sys.argv[1:7]
x = np.load(calib).astype(np.float32)
CONV = ("CONV_2D", "DEPTHWISE_CONV_2D")
def rep():
    for i in range(len(x)):
        yield [x[i:i + 1]]
def converter():
    c = tf.lite.TFLiteConverter.from_saved_model(saved)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                   tf.lite.OpsSet.TFLITE_BUILTINS]
    c._experimental_disable_per_channel = per_channel != "1"
    return c
def interpreter(content):
    it = tf.lite.Interpreter(model_content=content)
    return it, {t["index"]: (t["name"], t["dtype"]) for t in it.get_tensor_details()}
it, names = interpreter(tf.lite.TFLiteConverter.from_saved_model(saved).convert())
ops = it._get_ops_details()
keep, seen = [], 0
for op in ops:  # the stem: everything before the (convs + 1)-th convolution
    if op["op_name"] in CONV:
        if seen == int(convs):
            break
        seen += 1
    keep.append(op)
if heads == "1":  # the output heads: back from each output to the convolution that feeds it
    producer = {t: op for op in ops for t in op["outputs"]}
    todo = [o["index"] for o in it.get_output_details()]
    while todo:
        op = producer.get(todo.pop())
        if op is None or op in keep:
            continue
        keep.append(op)
        if op["op_name"] not in CONV:
            todo += list(op["inputs"])
deny = [names[t][0] for op in keep for t in op["outputs"]]
opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny)
dbg = tf.lite.experimental.QuantizationDebugger(
    converter=converter(), debug_dataset=rep, debug_options=opts)
model = dbg.get_nondebug_quantized_model()
open(out, "wb").write(model)
it, names = interpreter(model)
floats = {}
for op in it._get_ops_details():
    name = op["op_name"]
    if name not in ("QUANTIZE", "DEQUANTIZE") and names[op["outputs"][0]][1] == np.float32:
        floats[name] = floats.get(name, 0) + 1
print(json.dumps({"float_ops": floats, "denylisted_convs": sum(
    op["op_name"] in CONV for op in keep)}))
"""


def quantize_with_float_layers(
    out_dir: Path, calibration_nhwc: npt.NDArray[np.float32], recipe: Recipe, stem: str
) -> Path:
    """INT8 TFLite (float inputs and outputs) of the saved_model onnx2tf wrote to ``out_dir``
    with layers kept in float: the first ``recipe.float_stem_convs`` convolutions and the ops
    up to the next one (pads, activations, pools), and with ``recipe.float_output_convs`` the
    convolutions that feed the outputs and the ops after them (slices, sigmoids, reshapes,
    transposes). The convolutions left in float are counted, so a denylist that matched
    nothing is an error, not a silent all-INT8 model."""
    calib, out = out_dir / "calibration.npy", out_dir / f"{stem}_float_layers_quant.tflite"
    np.save(calib, calibration_nhwc.astype(np.float32))
    flags = ["1" if recipe.float_output_convs else "0", "1" if recipe.per_channel else "0"]
    args = [str(out_dir), str(calib), str(out), str(recipe.float_stem_convs), *flags]
    proc = subprocess.run(  # noqa: S603  our argv, no shell
        [str(tool_dir() / "bin" / "python"), "-c", _QUANTIZE, *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConversionError(f"TFLite INT8 with float layers failed ({tail[:300]})")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    floats, denied = record["float_ops"], int(record["denylisted_convs"])
    kept = floats.get("CONV_2D", 0) + floats.get("DEPTHWISE_CONV_2D", 0)
    if denied < recipe.float_stem_convs or kept != denied:
        raise ConversionError(
            f"float_stem_convs = {recipe.float_stem_convs}: the TFLite model keeps {kept} of "
            f"the {denied} convolution(s) asked for in float; set float_stem_convs to at most "
            "the model's convolutions"
        )
    log.info("TFLite ops left in float: %s", floats)
    return out


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
