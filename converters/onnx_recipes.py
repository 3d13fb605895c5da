"""ONNX recipes: load and check, fix input shapes, opset upgrade, ``quant_pre_process``,
static INT8 QDQ (per-channel, MinMax or Percentile), dynamic INT8 and FP16."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter

from converters.calibration import CalibrationSet, Reader
from converters.errors import ConversionError, UnsupportedOpError
from edge.errors import ModelError
from edge.profiles import Recipe

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuantOptions:
    """The static-INT8 knobs of a recipe, plus the nodes kept in float by the gate."""

    per_channel: bool = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    reduce_range: bool = False
    calibration: str = "minmax"
    percentile: float = 99.999
    nodes_to_exclude: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_recipe(cls, r: Recipe, exclude: tuple[str, ...] = ()) -> QuantOptions:
        return cls(
            r.per_channel, r.activation_type, r.weight_type, r.reduce_range,
            r.calibration, r.percentile, exclude,
        )  # fmt: skip


def load(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX file; a non-ONNX file is a one-line error."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, onnx raises several types
        raise ModelError(
            f"{path}: not an ONNX model ({type(exc).__name__}); expected an .onnx file"
        ) from None
    if not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph nodes); expected an .onnx file")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{path}: invalid ONNX model ({first[:200]})") from None
    return model


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def op_counts(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def check_ops(
    model: onnx.ModelProto, supported: list[str] | None, origin: str, profile: str
) -> None:
    """Raise ``UnsupportedOpError`` naming each op (and its first node) the target cannot run."""
    if supported is None:
        return
    allowed = set(supported)
    bad: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type not in allowed and node.op_type not in bad:
            bad[node.op_type] = node.name or "(unnamed)"
    if bad:
        ops = ", ".join(f"{op} (node {name!r})" for op, name in bad.items())
        raise UnsupportedOpError(
            f"{origin}: profile {profile!r} cannot run op{'s' * (len(bad) > 1)} {ops}; "
            "replace them in the model or choose a profile whose runtime supports them"
        )


def fix_input_shapes(
    model: onnx.ModelProto, size: tuple[int, int] | None, layout: str = "NCHW"
) -> onnx.ModelProto:
    """Batch → 1 for every input; with ``size`` (w, h), also the spatial dims of 4-D inputs
    whose spatial dims are dynamic. A model exported at a fixed size keeps it: its shape
    constants (nanodet-m's Reshapes) hold that size, and its manifest was made for it."""
    from onnxruntime.tools.onnx_model_utils import make_input_shape_fixed

    init_names = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in init_names:
            continue
        dims = inp.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
        if not shape:
            continue
        shape[0] = 1
        spatial = (2, 3) if layout == "NCHW" else (1, 2)
        if size is not None and len(shape) == 4 and any(shape[i] < 0 for i in spatial):
            w, h = size
            if layout == "NCHW":
                shape[2], shape[3] = h, w
            else:
                shape[1], shape[2] = h, w
        if any(d < 0 for d in shape) and size is not None:
            raise ConversionError(
                f"input {inp.name!r}: dims {shape} stay dynamic after fixing; set recipe.input_size"
            )
        make_input_shape_fixed(model.graph, inp.name, shape)
    return model


def static_image_size(path: Path, layout: str = "NCHW") -> tuple[int, int] | None:
    """(width, height) of a 4-D first input whose spatial dims are fixed, else ``None``."""
    graph = load(path).graph
    init = {i.name for i in graph.initializer}
    inp = next((i for i in graph.input if i.name not in init), None)
    dims = (
        [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
        if inp
        else []
    )
    if len(dims) != 4:
        return None
    h, w = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    return (w, h) if w > 0 and h > 0 else None


def upgrade_opset(model: onnx.ModelProto, minimum: int) -> onnx.ModelProto:
    """Per-channel QDQ needs opset ≥ 13 (axis on QuantizeLinear); older models are converted."""
    current = opset_of(model)
    if current >= minimum:
        return model
    log.info("upgrading opset %d → %d", current, minimum)
    try:
        return version_converter.convert_version(model, minimum)
    except Exception as exc:  # the converter raises RuntimeError or its own types
        raise ConversionError(
            f"cannot upgrade the model from opset {current} to {minimum} ({str(exc)[:200]}); "
            "re-export it at a newer opset"
        ) from None


def prepare(src: Path, dst: Path, recipe: Recipe, layout: str, origin: str, profile: str) -> Path:
    """Check ops, fix shapes, upgrade opset, then ``quant_pre_process`` into ``dst``."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load(src)
    check_ops(model, recipe.supported_ops, origin, profile)
    model = fix_input_shapes(model, recipe.input_size if recipe.static_shape else None, layout)
    model = upgrade_opset(model, recipe.min_opset)
    staged = dst.with_name(dst.stem + ".staged.onnx")
    onnx.save(model, str(staged))
    dynamic = any(
        not d.HasField("dim_value") for i in model.graph.input for d in i.type.tensor_type.shape.dim
    )
    try:
        quant_pre_process(str(staged), str(dst), skip_symbolic_shape=dynamic)
    except ImportError as exc:
        raise ConversionError(f"quant_pre_process needs {exc.name}: pip install sympy") from None
    staged.unlink()
    pre = onnx.load(str(dst))
    folded = fold_neg_inf_pads(pre)
    if folded:
        log.info("folded %d Pad(-inf) node(s) into their MaxPool", folded)
        onnx.save(pre, str(dst))
    if dynamic:
        strip_value_info(dst)
    return dst


def fold_neg_inf_pads(model: onnx.ModelProto) -> int:
    """Fold each ``Pad(constant, -inf)`` → ``MaxPool`` pair into the MaxPool's own ``pads``.

    TensorFlow exports (tf2onnx: TF.js, Keras) write a MaxPool with "SAME" padding as an
    explicit Pad with -inf; calibration then sees an infinite range, the scale becomes inf
    and the quantized model outputs NaN from there on (nanodet-m: box F1 0 vs FP32).
    A MaxPool's own padding never wins the max, which is the same result. Returns how many
    were folded (``model`` is changed in place).
    """
    from onnx import numpy_helper

    init = {i.name: i for i in model.graph.initializer}
    consumers: Counter[str] = Counter(i for n in model.graph.node for i in n.input)
    by_input = {n.input[0]: n for n in model.graph.node if n.op_type == "MaxPool" and n.input}
    graph_outputs = {o.name for o in model.graph.output}
    drop: list[onnx.NodeProto] = []
    for pad in model.graph.node:
        pool = by_input.get(pad.output[0]) if pad.op_type == "Pad" else None
        if pool is None or consumers[pad.output[0]] != 1 or pad.output[0] in graph_outputs:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pad.attribute}
        pool_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}
        if attrs.get("mode", b"constant") not in (b"constant", "constant"):
            continue
        if pool_attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        if len(pad.input) < 3 or pad.input[1] not in init or pad.input[2] not in init:
            continue
        if len(pad.input) > 3 and pad.input[3]:  # explicit axes: leave it
            continue
        pads = numpy_helper.to_array(init[pad.input[1]]).astype(int).tolist()
        value = numpy_helper.to_array(init[pad.input[2]])
        rank = len(pads) // 2
        if value.size != 1 or not float(value.ravel()[0]) < -3.0e38 or rank < 3:
            continue
        begin, end = pads[:rank], pads[rank:]
        if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(pads) < 0:
            continue
        old = list(pool_attrs.get("pads", [0] * (2 * (rank - 2))))
        k = rank - 2
        new = [old[i] + begin[2 + i] for i in range(k)] + [
            old[k + i] + end[2 + i] for i in range(k)
        ]
        for a in list(pool.attribute):
            if a.name == "pads":
                pool.attribute.remove(a)
        pool.attribute.append(onnx.helper.make_attribute("pads", new))
        pool.input[0] = pad.input[0]
        drop.append(pad)
    for node in drop:
        model.graph.node.remove(node)
    return len(drop)


def strip_value_info(path: Path) -> None:
    """Drop intermediate shape annotations. With dynamic inputs, shape inference on PP-OCR
    gives broadcast operands one symbolic dim, and onnxruntime then fails at run time
    ("Shape mismatch attempting to re-use buffer"); without them it infers shapes itself."""
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    for out in model.graph.output:  # they may hold one calibration input's spatial size
        out.type.tensor_type.ClearField("shape")
    onnx.save(model, str(path))


def _qtype(name: str) -> object:
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]


_STEM_OPS = {"Relu", "LeakyRelu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Mul", "MaxPool",
             "AveragePool", "BatchNormalization", "PRelu", "Pad"}  # fmt: skip


def stem_nodes(path: Path, convs: int) -> tuple[str, ...]:
    """The first ``convs`` Conv nodes (graph order, which ``quant_pre_process`` sorts) and
    the activations and pools up to the next Conv: the stem a recipe keeps in float."""
    if convs <= 0:
        return ()
    names: list[str] = []
    seen = 0
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "Conv":
            if seen == convs:
                break
            seen += 1
        if node.op_type == "Conv" or node.op_type in _STEM_OPS:
            names.append(node.name)
    return tuple(names)


def float_op_counts(path: Path) -> dict[str, int]:
    """Nodes of a QDQ model that run in float, by op type: those whose data inputs do not
    all come from a DequantizeLinear or whose output does not go only into a
    QuantizeLinear (onnxruntime fuses a node into an INT8 kernel only between the two)."""
    graph = onnx.load(str(path)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    consumers: dict[str, list[str]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    counts: Counter[str] = Counter()
    for n in graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        ins = [i for i in n.input if i in producer]
        q_in = bool(ins) and all(producer[i] == "DequantizeLinear" for i in ins)
        outs = consumers.get(n.output[0], []) if n.output else []
        q_out = bool(outs) and all(op == "QuantizeLinear" for op in outs)
        if not (q_in and q_out):
            counts[n.op_type] += 1
    return dict(sorted(counts.items()))


def quantize_static_int8(src: Path, dst: Path, calib: CalibrationSet, opts: QuantOptions) -> Path:
    """Static INT8 QDQ with the recipe's types, per-channel and calibration method."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    # not CalibMaxIntermediateOutputs: onnxruntime 1.32 discards the data it flushes
    extra: dict[str, object] = {}
    if opts.calibration == "percentile":
        extra["CalibPercentile"] = opts.percentile
    quantize_static(
        str(src), str(dst), Reader(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=opts.per_channel,
        reduce_range=opts.reduce_range,
        activation_type=_qtype(opts.activation_type),
        weight_type=_qtype(opts.weight_type),
        nodes_to_exclude=list(opts.nodes_to_exclude) or None,
        calibrate_method=method[opts.calibration],
        extra_options=extra,
    )  # fmt: skip
    strip_value_info(dst)  # the quantizer writes them back
    check_constants(dst)
    return dst


def check_constants(path: Path) -> None:
    """The numeric check on a converted ONNX file: every float constant (weights, scales,
    biases) is finite. A calibration range that saw an infinity (a Pad with -inf that was
    not folded) gives an inf scale, which onnxruntime runs without complaint: the outputs
    are then wrong everywhere, not NaN, so this is checked on the file itself."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    users: dict[str, str] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, node.name or node.op_type)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ConversionError(
                f"{path.name}: constant {init.name!r} (used by node {users.get(init.name, '?')!r}) "
                "holds NaN/inf after conversion; calibration saw an infinite range there: keep "
                "that node in float or fix the model (a Pad with -inf before a MaxPool)"
            )


def quantize_dynamic_int8(src: Path, dst: Path, opts: QuantOptions) -> Path:
    """Dynamic INT8 (weights int8, activations quantized at run time): MatMul-heavy models."""
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), per_channel=opts.per_channel, reduce_range=opts.reduce_range,
        weight_type=_qtype(opts.weight_type), nodes_to_exclude=list(opts.nodes_to_exclude) or None,
    )  # fmt: skip
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and compute, float32 inputs and outputs (``keep_io_types``)."""
    try:
        from onnxconverter_common import float16  # type: ignore[import-untyped]  # no stubs
    except ImportError:
        raise ConversionError(
            "FP16 conversion needs onnxconverter-common: pip install onnxconverter-common"
        ) from None
    model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst
