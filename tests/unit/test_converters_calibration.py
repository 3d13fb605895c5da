"""Calibration sets: images through the manifest's pre-processing, .npy, and the errors
for empty and mismatched sets (they name the file and the expected shape)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from converters.calibration import load_set
from converters.errors import CalibrationError
from edge.models.manifest import ImageInput
from edge.runtime import TensorSpec

SPEC = [TensorSpec("x", (1, 3, 8, 8), np.dtype(np.float32))]
IMAGE = ImageInput(width=8, height=8, layout="NCHW", color="RGB", resize="stretch",
                   std=(255.0, 255.0, 255.0))  # fmt: skip


def test_images_use_manifest_preprocessing(tmp_path: Path) -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 2] = 255  # pure red in BGR
    cv2.imwrite(str(tmp_path / "a.png"), img)
    calib = load_set(tmp_path, IMAGE, SPEC)
    x = calib.samples[0].load()["x"]
    assert x.shape == (1, 3, 8, 8)
    # RGB order, scaled to 0..1: channel 0 (R) is 1, G and B are 0
    assert np.allclose(x[0, 0], 1.0) and np.allclose(x[0, 1:], 0.0)


def test_digest_follows_content(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 8, 8), np.float32))
    d1 = load_set(tmp_path / "c.npy", None, SPEC).digest
    np.save(tmp_path / "c.npy", np.ones((2, 3, 8, 8), np.float32))
    assert load_set(tmp_path / "c.npy", None, SPEC).digest != d1


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="calibration set is empty"):
        load_set(tmp_path, IMAGE, SPEC)


def test_wrong_channels_named(tmp_path: Path) -> None:
    np.save(tmp_path / "gray.npy", np.zeros((4, 1, 8, 8), np.float32))
    with pytest.raises(CalibrationError, match=r"gray.npy\[0\]: shape 1×1×8×8 does not fit model "
                       r"input 'x' of shape 1×3×8×8 \(wrong number of channels\?\)"):  # fmt: skip
        load_set(tmp_path / "gray.npy", None, SPEC)


def test_wrong_rank_named(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((4, 192), np.float32))
    with pytest.raises(CalibrationError, match=r"flat\.npy: shape 4×192 does not fit"):
        load_set(tmp_path / "flat.npy", None, SPEC)


def test_images_for_a_non_image_manifest(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CalibrationError, match="manifest input is not an image"):
        load_set(tmp_path, None, SPEC)
