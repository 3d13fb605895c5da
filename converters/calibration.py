"""Calibration (and evaluation) inputs: an image folder, an audio folder, or ``.npy``.

Images go through the model manifest's own pre-processing
(``edge.detectors.preprocess.ImagePreprocessor``), so the ranges the quantizer
sees are the ranges the detector will feed. Every sample is checked against the
model's input spec; errors name the file and the expected shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from onnxruntime.quantization import CalibrationDataReader
from tqdm import tqdm

from converters.errors import CalibrationError
from edge import progress
from edge.detectors.preprocess import ImagePreprocessor
from edge.media.image import AUDIO_SUFFIXES, IMAGE_SUFFIXES, read_image
from edge.models.manifest import AudioInput, ImageInput
from edge.runtime.base import TensorSpec

Feeds = dict[str, npt.NDArray[np.generic]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One calibration input: where it came from and how to build its feeds."""

    origin: str
    load: Callable[[], Feeds]


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    samples: list[Sample]
    digest: str  # sha256 over the files' names and bytes: recorded in the bundle
    kind: str  # "image", "audio" or "npy"

    def __len__(self) -> int:
        return len(self.samples)

    def feeds(self, desc: str = "calibration") -> Iterator[Feeds]:
        for s in tqdm(
            self.samples, desc=desc, unit="input", leave=False, disable=not progress.enabled()
        ):
            yield s.load()


class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime is untyped
    """onnxruntime's reader protocol over a ``CalibrationSet``, with a progress bar."""

    def __init__(self, calib: CalibrationSet, desc: str = "calibration") -> None:
        self._calib = calib
        self._desc = desc
        self._it: Iterator[Feeds] = calib.feeds(desc)

    def get_next(self) -> Feeds | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._calib.feeds(self._desc)


def check_shape(origin: str, spec: TensorSpec, array: npt.NDArray[np.generic]) -> None:
    """Raise unless ``array`` fits ``spec`` (dynamic dims match anything)."""
    expected = "×".join("?" if d < 0 else str(d) for d in spec.shape)
    got = "×".join(str(d) for d in array.shape)
    if array.ndim != len(spec.shape) or any(
        d >= 0 and d != a for d, a in zip(spec.shape, array.shape, strict=True)
    ):
        hint = ""
        if array.ndim == len(spec.shape) == 4 and 3 in spec.shape[1:] and 3 not in array.shape[1:]:
            hint = " (wrong number of channels?)"
        raise CalibrationError(
            f"{origin}: shape {got} does not fit model input {spec.name!r} "
            f"of shape {expected}{hint}"
        )


def _digest(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root) if f != root else f.name).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _spread(files: list[Path], limit: int | None) -> list[Path]:
    """At most ``limit`` files, spread evenly over the sorted list."""
    if limit is None or len(files) <= limit:
        return files
    idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
    return [files[i] for i in sorted(set(idx.tolist()))]


def _image_sample(path: Path, spec: ImageInput, inputs: list[TensorSpec]) -> Sample:
    def load() -> Feeds:
        if len(inputs) != 1:
            raise CalibrationError(
                f"{path}: an image calibration set needs a one-input model, this one has "
                f"{len(inputs)} inputs ({', '.join(i.name for i in inputs)}); pass a .npy instead"
            )
        tensor, _ = ImagePreprocessor(spec, inputs[0])(read_image(path))
        check_shape(str(path), inputs[0], tensor)
        return {inputs[0].name: np.array(tensor, copy=True)}  # the preprocessor reuses its buffer

    return Sample(str(path), load)


def _audio_samples(
    path: Path, spec: AudioInput, inputs: list[TensorSpec], limit: int
) -> list[Sample]:
    """Windows of one audio file; extra inputs get the sample rate (``sr``) or zeros (state)."""
    from edge.media.audio import read_audio

    audio = read_audio(path, spec.sample_rate)
    step = spec.window
    size = spec.window + spec.context
    starts = list(range(0, max(0, len(audio) - size) + 1, step))
    if not starts:
        raise CalibrationError(f"{path}: shorter than one model window ({size} samples)")
    picks = np.linspace(0, len(starts) - 1, min(limit, len(starts))).astype(int)
    starts = [starts[i] for i in picks]
    main, rest = inputs[0], inputs[1:]

    def make(start: int) -> Sample:
        def load() -> Feeds:
            x = audio[start : start + size][np.newaxis].astype(np.float32)
            feeds: Feeds = {main.name: x}
            for t in rest:
                shape = tuple(max(d, 1) for d in t.shape)
                if t.name == "sr" or np.issubdtype(t.dtype, np.integer):
                    feeds[t.name] = np.full(shape, spec.sample_rate, dtype=t.dtype)
                else:
                    feeds[t.name] = np.zeros(shape, dtype=t.dtype)
            check_shape(f"{path}@{start}", main, x)
            return feeds

        return Sample(f"{path}@{start}", load)

    return [make(s) for s in starts]


def _npy_samples(path: Path, inputs: list[TensorSpec]) -> list[Sample]:
    if len(inputs) != 1:
        raise CalibrationError(
            f"{path}: a .npy calibration set feeds one input; the model has {len(inputs)}"
        )
    spec = inputs[0]
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim == len(spec.shape) - 1:
        arr = arr[np.newaxis]
    if arr.ndim != len(spec.shape) or arr.shape[0] == 0:
        check_shape(str(path), spec, arr)
        raise CalibrationError(f"{path}: holds no samples (first dimension is 0)")
    arr = arr.astype(spec.dtype, copy=False)
    check_shape(f"{path}[0]", spec, arr[:1])

    def one(i: int) -> Sample:
        return Sample(f"{path}[{i}]", lambda: {spec.name: arr[i : i + 1]})

    return [one(i) for i in range(len(arr))]


def load_set(
    path: Path,
    model_input: ImageInput | AudioInput | None,
    inputs: list[TensorSpec],
    limit: int | None = None,
    skip: set[Path] | None = None,
) -> CalibrationSet:
    """Samples from an image folder, an audio folder, a ``.npy`` file or a folder of them."""
    if not path.exists():
        raise CalibrationError(f"{path}: calibration set not found")
    if path.is_file():
        if path.suffix.lower() != ".npy":
            raise CalibrationError(f"{path}: expected a folder of images/audio or a .npy file")
        samples = _npy_samples(path, inputs)
        return CalibrationSet(samples[:limit] if limit else samples, _digest([path], path), "npy")
    files = sorted(f for f in path.rglob("*") if f.is_file())
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES and f not in (skip or set())]
    audio = [f for f in files if f.suffix.lower() in {".wav", ".wave"} | AUDIO_SUFFIXES]
    arrays = [f for f in files if f.suffix.lower() == ".npy"]
    if images:
        if not isinstance(model_input, ImageInput):
            raise CalibrationError(
                f"{path}: holds images, but the model's manifest input is not an image; "
                "pass a .npy calibration set"
            )
        chosen = _spread(images, limit)
        samples = [_image_sample(f, model_input, inputs) for f in chosen]
        return CalibrationSet(samples, _digest(chosen, path), "image")
    if audio:
        if not isinstance(model_input, AudioInput):
            raise CalibrationError(f"{path}: holds audio, but the model's input is not audio")
        per_file = max(1, (limit or 64) // len(audio))
        samples = [s for f in audio for s in _audio_samples(f, model_input, inputs, per_file)]
        return CalibrationSet(samples[:limit] if limit else samples, _digest(audio, path), "audio")
    if arrays:
        samples = [s for f in arrays for s in _npy_samples(f, inputs)]
        return CalibrationSet(samples[:limit] if limit else samples, _digest(arrays, path), "npy")
    raise CalibrationError(
        f"{path}: calibration set is empty (no images, WAV files or .npy arrays); "
        "add representative inputs, 16-64 are typical"
    )
