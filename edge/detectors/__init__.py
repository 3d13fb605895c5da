"""Detectors: pre-processing, model call and decoding, chosen by the manifest's decoder.

``DECODERS`` is the explicit registry: a manifest's ``decoder.type`` names an
entry, whose ``Params`` model validates the manifest's decoder parameters and
whose ``build`` returns a ready detector. Adding a model of a known family is a
manifest; adding a family is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from edge.detectors import db_text, ssd_anchor, vad
from edge.detectors.base import AudioDetector, Detection, ImageDetector, Segment, StageTimes
from edge.errors import ManifestError
from edge.models.manifest import Manifest, format_validation_error
from edge.runtime.base import Backend


@dataclass(frozen=True, slots=True)
class DecoderEntry:
    input_kind: Literal["image", "audio"]
    params: type[BaseModel]
    build: Callable[[Manifest, Backend, Any], ImageDetector | AudioDetector]


DECODERS: dict[str, DecoderEntry] = {
    "ssd_anchor": DecoderEntry("image", ssd_anchor.Params, ssd_anchor.build),
    "db_text": DecoderEntry("image", db_text.Params, db_text.build),
    "silero_vad": DecoderEntry("audio", vad.Params, vad.build),
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
    return entry.build(manifest, backend, params)


__all__ = [
    "DECODERS",
    "AudioDetector",
    "Detection",
    "ImageDetector",
    "Segment",
    "StageTimes",
    "build_detector",
    "decoder_entry",
]
