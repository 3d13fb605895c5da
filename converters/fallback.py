"""``--auto-fallback``: rank the nodes whose INT8 quantization hurts most, so the next round
keeps them in float.

Fine method (``activation_sqnr``): run the QDQ model on a few calibration samples with the
activation on either side of each QuantizeLinear → DequantizeLinear pair as extra outputs,
and rank each pair by its signal-to-quantization-noise ratio (SQNR in dB, lower is worse).
That is the ``qdq_err`` of onnxruntime's ``qdq_loss_debug``, computed so that it holds on a
variable-size model such as PP-OCR (where ``qdq_loss_debug`` crashed about every other run
and peaked at 12.6 GB against 3.5 GB for the conversion):

- tensors in graph order: ``qdq_loss_debug`` collects them in a ``set``, so its extra outputs,
  and with them onnxruntime's buffer planning and its failures, change with PYTHONHASHSEED;
- no intermediate shape annotations and the memory pattern off: ``qdq_loss_debug`` re-runs
  shape inference, whose symbolic dims make onnxruntime's planner fail with "Shape mismatch
  attempting to re-use buffer" on an input of another size;
- a chunk of tensors per session, each reduced to two sums as soon as it comes back, on
  ``DEBUG_SAMPLES`` samples drawn with a fixed seed, instead of every activation of every
  sample held at once; the chunk is sized to ``CHUNK_BYTES`` from what the first one took;
- the float model is not run at all (``qdq_err`` needs only the QDQ model).

Coarse method (``weight_sqnr``), used when the fine one fails (an onnxruntime error, out of
memory): the SQNR of each node's quantized weights against its float weights, from the
initializers alone, with no inference. ``Ranking.note`` says why, and the report records it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from converters.calibration import CalibrationSet, Feeds
from converters.errors import ConversionError
from converters.runtime_errors import FAILURES, describe

log = logging.getLogger(__name__)

SEED = 0  # picks the debugging samples; recorded in report.json
DEBUG_SAMPLES = 3
CHUNK_BYTES = 512 * 2**20  # extra outputs held at once, about
FIRST_CHUNK = 8  # pairs in the first chunk, before their size is known
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, slots=True)
class Ranking:
    nodes: list[str]  # worst first, at most ``count``, none of ``skip``
    method: str  # "activation_sqnr" or "weight_sqnr"
    scores: dict[str, float]  # node → SQNR in dB, for the nodes returned
    note: str = ""  # why the coarse method ran, empty otherwise


@dataclass(frozen=True, slots=True)
class _Pair:
    pre: str  # the float activation entering QuantizeLinear
    post: str  # the DequantizeLinear output that replaces it
    elem_type: int


def pick_samples(calib: CalibrationSet, n: int = DEBUG_SAMPLES, seed: int = SEED) -> list[int]:
    """``n`` sample indices drawn with ``seed``, in order: the same set on every run."""
    if len(calib) <= n:
        return list(range(len(calib)))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(len(calib), size=n, replace=False))


def qdq_pairs(model: onnx.ModelProto) -> list[_Pair]:
    """Each activation's QuantizeLinear → DequantizeLinear pair, in graph order."""
    inits = {i.name: i for i in model.graph.initializer}
    dq_of: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] not in dq_of:
            dq_of[node.input[0]] = node.output[0]
    pairs: list[_Pair] = []
    seen: set[str] = set()
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or node.input[0] in seen:
            continue
        post = dq_of.get(node.output[0])
        scale = inits.get(node.input[1])
        if post is None or scale is None:
            continue
        seen.add(node.input[0])
        pairs.append(_Pair(node.input[0], post, scale.data_type))
    return pairs


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: n for n in model.graph.node for out in n.output}


def folded_relus(float_model: onnx.ModelProto, qdq: onnx.ModelProto) -> frozenset[str]:
    """Tensors a float-model Relu makes that the quantizer folded into the Q/DQ pair (the
    uint8 range does the clipping): in the QDQ model the tensor before QuantizeLinear is the
    previous node's, negatives included, so it is compared after a ReLU, or every folded
    Relu would look like the worst-quantized node (and keeping it in float changes nothing)."""
    f, q = producers(float_model), producers(qdq)
    return frozenset(
        t for t, n in f.items() if n.op_type == "Relu" and t in q and q[t].op_type != "Relu"
    )


def _nodes_at(pair: _Pair, f: dict[str, onnx.NodeProto], q: dict[str, onnx.NodeProto],
              readers: dict[str, list[str]], names: set[str]) -> list[str]:  # fmt: skip
    """The float-model nodes whose quantization puts the Q/DQ pair on ``pair.pre``: the
    nodes that read its DequantizeLinear output (a quantized node quantizes its inputs, so
    keeping only the producer in float would leave the pair in place), and the producer:
    the node that makes it in the QDQ model (the Conv before a folded Relu), else in the
    float model."""
    out = [n for n in readers.get(pair.post, []) if n in names]
    if pair.pre in q and q[pair.pre].name in names:
        out.append(q[pair.pre].name)
    elif pair.pre in f:
        out.append(f[pair.pre].name)
    return out


def _needed(model: onnx.ModelProto, tensors: list[str]) -> list[onnx.NodeProto]:
    """The nodes ``tensors`` depend on, in graph order: a chunk early in the graph runs only
    the start of it."""
    made_by = producers(model)
    keep: set[int] = set()
    todo = [made_by[t] for t in tensors if t in made_by]
    index = {id(n): i for i, n in enumerate(model.graph.node)}
    while todo:
        node = todo.pop()
        if index[id(node)] in keep:
            continue
        keep.add(index[id(node)])
        todo.extend(made_by[t] for t in node.input if t in made_by)
    return [n for i, n in enumerate(model.graph.node) if i in keep]


def _chunk_model(model: onnx.ModelProto, pairs: list[_Pair]) -> bytes:
    """The part of ``model`` that ``pairs`` need, with their tensors as its only outputs
    (no shapes: onnxruntime infers them for each input size)."""
    names = [n for p in pairs for n in (p.pre, p.post)]
    nodes = _needed(model, names)
    used = {t for n in nodes for t in n.input}
    g = model.graph
    graph = helper.make_graph(
        nodes, g.name,
        [i for i in g.input if i.name in used],
        [helper.make_tensor_value_info(n, p.elem_type, None)
         for p in pairs for n in (p.pre, p.post)],
        initializer=[i for i in g.initializer if i.name in used],
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    data: bytes = m.SerializeToString()
    return data


def _session(model: bytes, threads: int) -> Any:  # onnxruntime is untyped
    import onnxruntime as ort

    so = ort.SessionOptions()
    # unfused, so every Q/DQ pair is there to read; the memory pattern and arena off, so
    # an input of another size is planned afresh and freed memory goes back to the system
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.enable_mem_pattern = False
    so.enable_cpu_mem_arena = False
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def _chunks(pairs: list[_Pair], sizes: Iterator[int]) -> Iterator[list[_Pair]]:
    i = 0
    while i < len(pairs):
        n = next(sizes)
        yield pairs[i : i + n]
        i += n


def activation_sqnr(
    qdq: onnx.ModelProto, feeds: list[Feeds], threads: int, relu: frozenset[str] = frozenset()
) -> dict[str, float]:
    """SQNR (dB) of each quantized activation over ``feeds``, keyed by the float tensor.
    Tensors in ``relu`` are compared after a ReLU (see ``folded_relus``)."""
    pairs = qdq_pairs(qdq)
    signal = dict.fromkeys((p.pre for p in pairs), 0.0)
    noise = dict.fromkeys((p.pre for p in pairs), 0.0)
    per_pair: list[float] = []  # bytes one pair took, largest sample

    def sizes() -> Iterator[int]:
        yield FIRST_CHUNK
        while True:
            avg = max(1.0, sum(per_pair) / max(1, len(per_pair)))
            yield max(1, int(CHUNK_BYTES // avg))

    t0, runs = time.perf_counter(), 0
    for chunk in _chunks(pairs, sizes()):
        runs += 1
        sess = _session(_chunk_model(qdq, chunk), threads)
        names = [n for p in chunk for n in (p.pre, p.post)]
        biggest = [0] * len(chunk)
        wanted = {i.name for i in sess.get_inputs()}
        for feed in feeds:
            outs = sess.run(names, {k: v for k, v in feed.items() if k in wanted})
            for k, p in enumerate(chunk):
                a = np.asarray(outs[2 * k], dtype=np.float32).ravel()
                if p.pre in relu:
                    a = np.maximum(a, 0.0)
                b = np.asarray(outs[2 * k + 1], dtype=np.float32).ravel()
                signal[p.pre] += float(np.dot(a, a))
                d = a - b
                noise[p.pre] += float(np.dot(d, d))
                biggest[k] = max(biggest[k], a.nbytes + b.nbytes)
                outs[2 * k] = outs[2 * k + 1] = None
            del outs
        per_pair.extend(biggest)
        del sess
    log.info(
        "activation debugging: %d Q/DQ pairs, %d chunks × %d samples, %.1f s",
        len(pairs), runs, len(feeds), time.perf_counter() - t0,
    )  # fmt: skip
    return {t: _db(signal[t], noise[t]) for t in signal}


def _db(signal_sq: float, noise_sq: float) -> float:
    return 20 * math.log10(max(math.sqrt(signal_sq), EPS) / max(math.sqrt(noise_sq), EPS))


def _dequantize(
    q: npt.NDArray[np.generic], scale: npt.NDArray[np.generic],
    zp: npt.NDArray[np.generic] | None, axis: int,
) -> npt.NDArray[np.float64]:  # fmt: skip
    x = q.astype(np.float64)
    z = np.zeros_like(scale, dtype=np.float64) if zp is None else zp.astype(np.float64)
    s = scale.astype(np.float64)
    if s.size > 1:
        shape = [1] * x.ndim
        shape[axis] = s.size
        s, z = s.reshape(shape), z.reshape(shape)
    return (x - z) * s


def weight_sqnr(float_model: onnx.ModelProto, qdq: onnx.ModelProto) -> dict[str, float]:
    """SQNR (dB) of each quantized weight, keyed by the float-model node that uses it."""
    f_inits = {i.name: i for i in float_model.graph.initializer}
    q_inits = {i.name: i for i in qdq.graph.initializer}
    users: dict[str, str] = {}
    for node in float_model.graph.node:
        for name in node.input:
            if name in f_inits:
                users.setdefault(name, node.name)
    out: dict[str, float] = {}
    for node in qdq.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in q_inits:
            continue
        weight = node.input[0].removesuffix("_quantized")
        if weight not in f_inits or weight not in users or node.input[1] not in q_inits:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        zp = None
        if len(node.input) > 2 and node.input[2] in q_inits:
            zp = numpy_helper.to_array(q_inits[node.input[2]])
        w = numpy_helper.to_array(f_inits[weight]).astype(np.float64)
        deq = _dequantize(
            numpy_helper.to_array(q_inits[node.input[0]]),
            numpy_helper.to_array(q_inits[node.input[1]]), zp, axis,
        )  # fmt: skip
        d = w - deq.reshape(w.shape)
        db = _db(float(np.sum(w * w)), float(np.sum(d * d)))
        user = users[weight]
        out[user] = min(db, out.get(user, math.inf))
    return out


def _worst(scores: dict[str, float], count: int, skip: set[str]) -> list[str]:
    # rounded, so that last-bit differences between runs cannot reorder; ties by name
    ranked = sorted((round(s, 3), n) for n, s in scores.items() if n and n not in skip)
    return [n for _, n in ranked[:count]]


def rank(
    float_path: str, qdq_path: str, calib: CalibrationSet, count: int, skip: set[str],
    threads: int = 1, seed: int = SEED,
) -> Ranking:  # fmt: skip
    """The ``count`` float-model nodes to keep in float next, worst first."""
    float_model = onnx.load(float_path)
    qdq = onnx.load(qdq_path)
    note = ""
    try:
        feeds = [calib.samples[i].load() for i in pick_samples(calib, seed=seed)]
        by_tensor = activation_sqnr(qdq, feeds, threads, folded_relus(float_model, qdq))
        f, q = producers(float_model), producers(qdq)
        names = {n.name for n in float_model.graph.node}
        readers: dict[str, list[str]] = {}
        for n in qdq.graph.node:
            for t in n.input:
                readers.setdefault(t, []).append(n.name)
        by_node: dict[str, float] = {}  # each node: its worst Q/DQ pair
        for pair in qdq_pairs(qdq):
            for node in _nodes_at(pair, f, q, readers, names):
                by_node[node] = min(by_tensor[pair.pre], by_node.get(node, math.inf))
        nodes = _worst(by_node, count, skip)
        if nodes:
            return Ranking(nodes, "activation_sqnr", {n: round(by_node[n], 3) for n in nodes})
        note = "activation debugging found no quantized activation left to keep in float"
    except FAILURES as exc:
        note = f"activation debugging failed ({describe(exc)})"
    log.info("%s; ranking nodes by weight quantization error instead", note)
    try:
        by_node = weight_sqnr(float_model, qdq)
    except (ValueError, KeyError, IndexError) as exc:  # a malformed scale or zero point
        raise ConversionError(
            f"--auto-fallback: {note}, and ranking by weight error failed too "
            f"({type(exc).__name__}: {exc}); rerun without --auto-fallback"
        ) from None
    nodes = _worst(by_node, count, skip)
    return Ranking(nodes, "weight_sqnr", {n: round(by_node[n], 3) for n in nodes}, note)
