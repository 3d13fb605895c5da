"""Mechanics on tiny onnx.helper graphs: a Pad(-inf) folded into its MaxPool (same numbers,
finite calibration ranges), the stem a recipe keeps in float, the numeric check on a
converted file, a fixed-size model keeping its size; per-family profile changes; box F1
matching by label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters import onnx_recipes as recipes
from converters.errors import ConversionError
from edge.errors import ProfileError
from edge.profiles import PROFILES_DIR, get_profile, read_profile


def _pad_pool(path: Path) -> Path:
    """x[1,2,6,6] → Conv(1x1) → Pad(-inf, 1 each side) → MaxPool(3, stride 2) → Conv → y."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 1, (4, 2, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 1, (3, 4, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array(-np.inf, np.float32), "neg_inf"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Pad", ["c1", "pads", "neg_inf"], ["p"], name="pad", mode="constant"),
        helper.make_node("MaxPool", ["p"], ["m"], name="pool", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["m"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes, "padpool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 3])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {"x": x})[0])


def test_neg_inf_pad_is_folded_into_the_maxpool(tmp_path: Path) -> None:
    model = onnx.load(str(_pad_pool(tmp_path / "m.onnx")))
    x = np.random.default_rng(1).normal(0, 1, (1, 2, 6, 6)).astype(np.float32)
    before = _run(model, x)
    assert recipes.fold_neg_inf_pads(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "MaxPool", "Relu", "Conv"]
    pool = model.graph.node[1]
    assert helper.get_attribute_value(next(a for a in pool.attribute if a.name == "pads")) == [
        1, 1, 1, 1,
    ]  # fmt: skip
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-6)  # the same numbers


def test_zero_pad_is_left_alone(tmp_path: Path) -> None:
    model = onnx.load(str(_pad_pool(tmp_path / "m.onnx")))
    zero = next(i for i in model.graph.initializer if i.name == "neg_inf")
    zero.CopyFrom(numpy_helper.from_array(np.array(0.0, np.float32), "neg_inf"))
    assert recipes.fold_neg_inf_pads(model) == 0  # padding with 0 changes a max: not the same


def test_stem_nodes_are_the_first_convs_and_what_follows(tmp_path: Path) -> None:
    path = _pad_pool(tmp_path / "m.onnx")
    assert recipes.stem_nodes(path, 0) == ()
    assert recipes.stem_nodes(path, 1) == ("conv1", "pad", "pool", "relu")
    assert recipes.stem_nodes(path, 5) == ("conv1", "pad", "pool", "relu", "conv2")


def test_non_finite_constant_in_a_converted_file(tmp_path: Path) -> None:
    model = onnx.load(str(_pad_pool(tmp_path / "m.onnx")))
    w2 = next(i for i in model.graph.initializer if i.name == "w2")
    arr = numpy_helper.to_array(w2).copy()
    arr[0, 0, 0, 0] = np.inf
    w2.CopyFrom(numpy_helper.from_array(arr, "w2"))
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ConversionError, match=r"bad.onnx: constant 'w2' \(used by node 'conv2'\) "
                       r"holds NaN/inf after conversion"):  # fmt: skip
        recipes.check_constants(bad)


def test_a_fixed_size_model_keeps_its_size(tmp_path: Path) -> None:
    model = onnx.load(str(_pad_pool(tmp_path / "m.onnx")))
    assert recipes.static_image_size(tmp_path / "m.onnx") == (6, 6)
    model = recipes.fix_input_shapes(model, (640, 640), "NCHW")  # a recipe's input_size
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 2, 6, 6]


def test_family_changes_apply_to_that_family_only() -> None:
    vnni = get_profile("x86-64-vnni")
    gfl = vnni.for_family("gfl")
    assert gfl.recipe.float_stem_convs > 0 and vnni.recipe.float_stem_convs == 0
    assert vnni.for_family("db_text") is vnni  # ppocr-det keeps the profile's recipe


def test_bad_family_key_is_one_line(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "x86-64-vnni.toml").read_text()
    bad = tmp_path / "x86-64-vnni.toml"
    bad.write_text(text + "\n[families.yolo]\nrecipe = { float_stem_conv = 2 }\n")
    with pytest.raises(ProfileError) as exc:
        read_profile(bad)
    msg = str(exc.value)
    assert "\n" not in msg and "families.yolo" in msg and "float_stem_conv" in msg, msg


def test_box_f1_needs_the_same_label() -> None:
    from converters.evaluate import match_counts

    box = (10.0, 10.0, 50.0, 50.0)
    assert match_counts([box], [box]) == (1, 0, 0)
    assert match_counts([box], [box], labels=(["cat"], ["cat"])) == (1, 0, 0)
    assert match_counts([box], [box], labels=(["cat"], ["dog"])) == (0, 1, 1)  # a swap misses


def test_pi5_gfl_family_keeps_the_stem_and_heads_in_float() -> None:
    pi5 = get_profile("raspberry-pi-5")
    gfl = pi5.for_family("gfl")
    assert (gfl.recipe.float_stem_convs, gfl.recipe.float_output_convs) == (4, True)
    assert (pi5.recipe.float_stem_convs, pi5.recipe.float_output_convs) == (0, False)
    assert pi5.for_family("db_text") is pi5  # ppocr-det keeps the all-INT8 TFLite recipe


@pytest.mark.parametrize(
    ("family_recipe", "words"),
    [
        ("{ float_output_convs = true, full_integer = true }", "full_integer"),
        ("{ float_stem_convs = 2, full_integer = true }", "full_integer"),
        ("{ float_output_convs = true, format = 'onnx' }", "format = 'tflite'"),
    ],
)
def test_float_layers_need_a_float_io_tflite_int8_recipe(
    tmp_path: Path, family_recipe: str, words: str
) -> None:
    """Float layers in a TFLite model need float inputs and outputs; the output heads in
    float are a TFLite recipe (ONNX has --auto-fallback and per-node exclusion)."""
    text = (PROFILES_DIR / "raspberry-pi-5.toml").read_text()
    text = text.replace("recipe = { float_stem_convs = 4, float_output_convs = true }", "")
    bad = tmp_path / "raspberry-pi-5.toml"
    bad.write_text(text.replace("[gate]", f"[families.yolo]\nrecipe = {family_recipe}\n\n[gate]"))
    with pytest.raises(ProfileError) as exc:
        read_profile(bad)
    msg = str(exc.value)
    assert "\n" not in msg and "families.yolo" in msg and words in msg, msg


def test_a_denylist_that_missed_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TF's converter ignores denylisted names it does not know: a model whose float
    convolutions do not match what was asked is refused, not shipped as all-INT8."""
    import subprocess

    from converters import tflite

    recipe = get_profile("raspberry-pi-5").for_family("gfl").recipe

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        Path(cmd[5]).write_bytes(b"tflite")  # the output path
        out = '{"float_ops": {"PAD": 2}, "denylisted_convs": 7}'
        return subprocess.CompletedProcess(cmd, 0, out, "")

    monkeypatch.setattr(tflite.subprocess, "run", fake_run)
    calib = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ConversionError) as exc:
        tflite.quantize_with_float_layers(tmp_path, calib, recipe, "m")
    msg = str(exc.value)
    assert "\n" not in msg and "keeps 0 of the 7 convolution(s)" in msg, msg
