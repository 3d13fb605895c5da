"""What every image detector does the same before its own decoding: refuse a non-image
manifest, keep the manifest, stage times, backend and a pre-processor for its one image
input, and read outputs as float32 (dequantised for an integer model)."""

from __future__ import annotations

from edge.detectors.base import BackendDetector, StageTimes
from edge.detectors.outputs import Floats, as_float
from edge.detectors.preprocess import ImagePreprocessor
from edge.errors import ManifestError
from edge.models.manifest import ImageInput, Manifest
from edge.runtime.base import Array, Backend


class ImageModel(BackendDetector):
    """Base of the image decoders; ``_bind`` is their constructors' common start."""

    def _bind(self, manifest: Manifest, backend: Backend, decoder: str) -> ImageInput:
        if not isinstance(manifest.input, ImageInput):
            raise ManifestError(f"{manifest.name}: input.kind: {decoder} needs an image input")
        self.manifest = manifest
        self.times = StageTimes()
        self._backend = backend
        self._input_name = backend.inputs[0].name
        self._pre = ImagePreprocessor(manifest.input, backend.inputs[0])
        self._quant = [o.quantization for o in backend.outputs]
        return manifest.input

    def _output(self, outs: list[Array], i: int) -> Floats:
        """Output ``i`` as float32, dequantised with its own scale and zero point."""
        return as_float(outs[i], self._quant[i])
