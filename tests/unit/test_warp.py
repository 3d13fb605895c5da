"""input.resampling = "warp" (edge/detectors/warp.py): MediaPipe's ImageToTensor sampling.

Ground truth here is arithmetic, not OpenCV: MediaPipe samples tensor pixel (x, y) at
roi_left + x * roi_w / tw (likewise y), rounded to 1/32 px, and interpolates 8-bit pixels
with integer weights (32 - fx)(32 - fy)·32 … summed and shifted by 15 bits (OpenCV's
fixed-point bilinear, which MediaPipe's build runs). The match with MediaPipe's own graph
is tests/integration/test_blazeface_mediapipe.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.detectors.preprocess import ImagePreprocessor
from edge.detectors.warp import WarpResampler, mediapipe_roi
from edge.errors import ManifestError
from edge.models.manifest import ImageInput, parse_manifest
from edge.runtime.base import TensorSpec

ZOO = Path(__file__).resolve().parents[2] / "edge" / "models" / "zoo"
GEOMETRIES = [  # image w, h → tensor w, h, letterbox
    (640, 480, 128, 128, True),
    (512, 600, 192, 192, True),
    (300, 400, 128, 128, True),
    (332, 218, 128, 96, False),
    (100, 100, 128, 128, True),
]


def reference_warp(img: npt.NDArray[np.uint8], tw: int, th: int, keep: bool) -> Any:
    """Integer arithmetic only: the sampling MediaPipe's OpenCV converter does (border 0)."""
    ih, iw = img.shape[:2]
    roi = mediapipe_roi(iw, ih, tw, th, keep)
    fx32 = (roi.left + np.arange(tw) * (roi.width / tw)) * 32
    fy32 = (roi.top + np.arange(th) * (roi.height / th)) * 32
    # at an exact 1/64 px tie the rounding follows getPerspectiveTransform's last bit, not
    # this arithmetic: the geometries here have none
    for f in (fx32, fy32):
        assert np.abs(np.abs(f - np.floor(f)) - 0.5).min() > 1e-6
    sx, sy = np.rint(fx32).astype(np.int64), np.rint(fy32).astype(np.int64)
    x0, fx = sx >> 5, sx & 31
    y0, fy = sy >> 5, sy & 31
    padded = np.zeros((ih + 4, iw + 4, 3), np.int64)  # 0 outside: BORDER_ZERO
    padded[2:-2, 2:-2] = img

    def at(yy: Any, xx: Any) -> Any:
        yy, xx = np.clip(yy + 2, 0, ih + 3), np.clip(xx + 2, 0, iw + 3)
        return padded[yy[:, None], xx[None, :]]

    wx0, wx1 = (32 - fx)[None, :, None], fx[None, :, None]
    wy0, wy1 = (32 - fy)[:, None, None], fy[:, None, None]
    acc = (
        at(y0, x0) * wy0 * wx0 + at(y0, x0 + 1) * wy0 * wx1
        + at(y0 + 1, x0) * wy1 * wx0 + at(y0 + 1, x0 + 1) * wy1 * wx1
    ) * 32  # fmt: skip
    return np.clip((acc + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("iw", "ih", "tw", "th", "keep"), GEOMETRIES)
def test_warp_is_mediapipes_fixed_point_sampling(
    iw: int, ih: int, tw: int, th: int, keep: bool
) -> None:
    img = np.random.default_rng(iw * ih).integers(0, 256, (ih, iw, 3), dtype=np.uint8)
    spec = ImageInput(width=tw, height=th, resize="letterbox" if keep else "stretch",
                      resampling="warp")  # fmt: skip
    canvas = np.empty((th, tw, 3), np.uint8)
    WarpResampler(spec)(img, canvas)
    np.testing.assert_array_equal(canvas, reference_warp(img, tw, th, keep))


def test_letterbox_padding_is_fractional_and_zero() -> None:
    """640×480 → 128²: the ROI is 640² from y = -80, so rows 0–15 read y < 0 (zero)."""
    img = np.full((480, 640, 3), 200, np.uint8)
    spec = ImageInput(width=128, height=128, resize="letterbox", resampling="warp")
    canvas = np.empty((128, 128, 3), np.uint8)
    roi = WarpResampler(spec)(img, canvas)
    assert (roi.left, roi.top, roi.width, roi.height) == (0.0, -80.0, 640.0, 640.0)
    assert (canvas[:16] == 0).all() and (canvas[16:112] == 200).all()
    assert (canvas[112:] == 0).all()  # y = 480 and beyond: outside, not "last row"
    # 300×400 → 128²: ROI 400² from x = -50: 16 px of padding at 3.125 px/col, fractional
    img = np.full((400, 300, 3), 200, np.uint8)
    canvas[:] = 7
    WarpResampler(spec)(img, canvas)
    assert (canvas[:, :16] == 0).all() and canvas[0, 16, 0] == 200


def test_replicate_border_repeats_the_edge() -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    img[0], img[-1] = 50, 90
    spec = ImageInput(width=128, height=128, resampling="warp", border="replicate")
    canvas = np.empty((128, 128, 3), np.uint8)
    WarpResampler(spec)(img, canvas)
    assert (canvas[:16] == 50).all() and (canvas[113:] == 90).all()


def test_transform_maps_tensor_pixels_back_to_the_image() -> None:
    """Detections decode in tensor pixels; Transform.to_image must undo the ROI mapping."""
    spec = ImageInput(width=128, height=128, resampling="warp", mean=(0, 0, 0), std=(1, 1, 1))
    pre = ImagePreprocessor(spec, TensorSpec("x", (1, 128, 128, 3), np.dtype(np.float32)))
    _, t = pre(np.zeros((400, 300, 3), np.uint8))
    x, y = t.to_image(np.array([0.0, 128.0], np.float32), np.array([0.0, 128.0], np.float32))
    np.testing.assert_allclose(x, [-50.0, 350.0], atol=1e-4)  # ROI 400² from x = -50
    np.testing.assert_allclose(y, [0.0, 400.0], atol=1e-4)


def test_maps_are_made_once_per_input_size() -> None:
    spec = ImageInput(width=128, height=128, resampling="warp")
    warp = WarpResampler(spec)
    canvas = np.empty((128, 128, 3), np.uint8)
    a = warp.plan(640, 480, 128, 128)
    warp(np.zeros((480, 640, 3), np.uint8), canvas)
    assert warp.plan(640, 480, 128, 128) is a
    assert warp.plan(320, 240, 128, 128) is not a


def _zoo(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ZOO / "blazeface-short.json").read_text())
    data["input"].update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"resize": "limit_side"}, "resize = 'stretch' or 'letterbox'"),
        ({"interpolation": "area"}, "drop interpolation or set it to 'linear'"),
        ({"resampling": "resize", "border": "replicate"}, "border applies to resampling"),
        ({"resampling": "bilinear"}, "input.image.resampling"),
        ({"border": "reflect"}, "input.image.border"),
    ],
)
def test_bad_combinations_are_one_line_manifest_errors(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ManifestError) as exc:
        parse_manifest(_zoo(**changes), "m.json")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("m.json: input") and words in msg, msg


def test_warp_with_linear_interpolation_is_accepted() -> None:
    m = parse_manifest(_zoo(interpolation="linear"), "m.json")
    assert m.input.resampling == "warp"  # type: ignore[union-attr]


@pytest.mark.parametrize("exclude_none", [True, False])
def test_a_dumped_warp_manifest_parses_again(exclude_none: bool) -> None:
    """OTA updates ship model_dump() of a zoo manifest: defaults must not turn into errors."""
    m = parse_manifest(_zoo(), "m.json")
    again = parse_manifest(m.model_dump(mode="json", exclude_none=exclude_none), "again.json")
    assert again == m
