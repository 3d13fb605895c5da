"""Detectors: pre-processing, model call and decoding, chosen by the manifest's decoder.

``DECODERS`` is the explicit registry: a manifest's ``decoder.type`` names an
entry, whose ``Params`` model validates the manifest's decoder parameters and
whose ``build`` returns a ready detector. Adding a model of a known family is a
manifest; adding a family is one module and one line here.

Each entry names its module and imports it on first use: a daemon with only an audio
model does not import the image decoders (nor OpenCV through them) at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from edge.detectors.base import AudioDetector, Detection, ImageDetector, Segment, StageTimes
from edge.detectors.labels import LabelThresholds, check_label_count, unknown_labels
from edge.errors import InputError, ManifestError
from edge.models.manifest import Manifest, format_validation_error
from edge.models.resolve import ResolvedModel, resolve
from edge.runtime import FORMAT_BACKEND, BackendOptions, load_backend
from edge.runtime.base import Backend


@dataclass(frozen=True, slots=True)
class DecoderEntry:
    """A decoder family: the input it takes and its module under ``edge.detectors``, whose
    ``Params`` and ``build`` are looked up (and the module imported) when first used."""

    input_kind: Literal["image", "audio"]
    module: str

    @property
    def params(self) -> type[BaseModel]:
        params: type[BaseModel] = importlib.import_module(self.module).Params
        return params

    @property
    def build(self) -> Callable[[Manifest, Backend, Any], ImageDetector | AudioDetector]:
        build: Callable[[Manifest, Backend, Any], ImageDetector | AudioDetector]
        build = importlib.import_module(self.module).build
        return build


DECODERS: dict[str, DecoderEntry] = {
    "ssd_anchor": DecoderEntry("image", "edge.detectors.ssd_anchor"),
    "db_text": DecoderEntry("image", "edge.detectors.db_text"),
    "yolo": DecoderEntry("image", "edge.detectors.yolo"),
    "detections": DecoderEntry("image", "edge.detectors.detections"),
    "gfl": DecoderEntry("image", "edge.detectors.gfl"),
    "silero_vad": DecoderEntry("audio", "edge.detectors.vad"),
    "micro_wakeword": DecoderEntry("audio", "edge.detectors.kws"),
}


def decoder_entry(manifest: Manifest, origin: str) -> tuple[DecoderEntry, BaseModel]:
    """The registry entry and validated parameters for ``manifest``; errors name the field."""
    name = manifest.decoder.type
    entry = DECODERS.get(name)
    if entry is None:
        raise ManifestError(
            f"{origin}: decoder.type: unknown decoder {name!r}; choose one of {sorted(DECODERS)}"
        )
    if entry.input_kind != manifest.input.kind:
        raise ManifestError(
            f"{origin}: input.kind: decoder {name!r} needs {entry.input_kind} input, "
            f"the manifest says {manifest.input.kind!r}"
        )
    try:
        params = entry.params.model_validate(manifest.decoder.params)
    except ValidationError as exc:
        msg = format_validation_error(f"{origin}: decoder", exc)
        raise ManifestError(msg.replace(": decoder: ", ": decoder.", 1)) from None
    return entry, params


def build_detector(
    manifest: Manifest, backend: Backend, origin: str
) -> ImageDetector | AudioDetector:
    entry, params = decoder_entry(manifest, origin)
    det = entry.build(manifest, backend, params)
    return with_label_thresholds(det, manifest.label_thresholds, origin)


def load_detector(
    ref: str | ResolvedModel,
    *,
    threads: int = 1,
    backend: str | None = None,
    providers: tuple[str, ...] = (),
    strict: bool = False,
    home: Path | None = None,
) -> tuple[ResolvedModel, ImageDetector | AudioDetector]:
    """Resolve ``ref`` (zoo name, manifest, bundle folder), open its backend, build its detector.

    The manifest is validated before the model is loaded, so a bad decoder name
    or parameter fails fast with the field named. A provider or delegate in
    ``providers`` that cannot be used falls back to the CPU (``detector.accelerator``
    says why), or, with ``strict``, is a ``BackendUnavailableError``.
    """
    model = ref if isinstance(ref, ResolvedModel) else resolve(ref, home)
    entry, params = decoder_entry(model.manifest, model.origin)  # fails before loading
    rt = load_backend(
        model.path,
        BackendOptions(threads=threads, providers=providers, strict=strict),
        backend or FORMAT_BACKEND[model.manifest.format],
    )
    try:
        det = entry.build(model.manifest, rt, params)
        return model, with_label_thresholds(det, model.manifest.label_thresholds, model.origin)
    except BaseException:
        rt.close()
        raise


def set_threshold(detector: ImageDetector | AudioDetector, value: float) -> None:
    """Override a detector's score threshold (``score_threshold``), checked to lie in (0, 1)."""
    if not 0.0 < value < 1.0:
        raise InputError(f"threshold must lie between 0 and 1, got {value}")
    if not hasattr(detector, "score_threshold"):
        raise InputError(f"{detector.manifest.name}: this detector has no score threshold to set")
    detector.score_threshold = value


def with_label_thresholds(
    detector: ImageDetector | AudioDetector, values: Mapping[str, float], origin: str
) -> ImageDetector | AudioDetector:
    """``detector`` with per-label thresholds ``values`` set over those it has (the manifest's
    ``label_thresholds``, then the device config's): wrapped in ``LabelThresholds`` once, the
    one place they are applied. No ``values``: ``detector`` as it is."""
    if not values:
        return detector
    m = detector.manifest
    if m.input.kind != "image":
        raise InputError(f"{origin}: label_thresholds apply to image detectors; {m.name} is audio")
    unknown = unknown_labels(values, m.labels)
    if unknown:
        raise InputError(f"{origin}: label_thresholds: {unknown} not among {m.name}'s {m.labels}")
    if isinstance(detector, LabelThresholds):
        detector.label_thresholds = {**detector.label_thresholds, **values}
        return detector
    return LabelThresholds(detector, values)  # type: ignore[arg-type]  # an image detector


__all__ = [
    "DECODERS",
    "AudioDetector",
    "Detection",
    "ImageDetector",
    "LabelThresholds",
    "Segment",
    "StageTimes",
    "build_detector",
    "check_label_count",
    "decoder_entry",
    "load_detector",
    "set_threshold",
    "with_label_thresholds",
]
