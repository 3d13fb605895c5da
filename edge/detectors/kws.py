"""Keyword spotting with microWakeWord streaming models (``decoder.type = "micro_wakeword"``).

The audio becomes 40-channel log-mel features in the TFLite Micro audio
frontend (``pymicro-features``: 30 ms windows every 10 ms). Every ``stride``
features (the input tensor's second dimension, 3 for the zoo models) are
quantized with the input tensor's parameters and fed to the int8 streaming
model, which keeps its own history in resource variables. As in
``pymicro-wakeword`` and ESPHome, the mean of the last ``sliding_window_size``
probabilities must exceed ``probability_cutoff``. One utterance keeps the mean
high for a while (up to 1.3 s for "hey mycroft"), so a detection fires when
the mean rises above the cutoff, and the next one needs the mean to have
fallen back to or below it and ``refractory_ms`` to have passed.

A detection is a ``Segment`` spanning the audio of the features in the
sliding window, scored by the mean probability that fired.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from edge.detectors.base import Audio, BackendDetector, Segment, StageTimes
from edge.errors import BackendUnavailableError, InputError, ManifestError
from edge.models.manifest import AudioInput, Manifest
from edge.runtime.base import Array, Backend, TensorSpec

FRONTEND_RATE = 16000
"""The TFLite Micro frontend in pymicro-features is built for 16 kHz, 16-bit audio."""
FRONTEND_STEP_MS = 10
FRONTEND_WINDOW_MS = 30
FRONTEND_CHANNELS = 40


class Params(BaseModel):
    """The manifest's ``decoder`` table for ``micro_wakeword``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability_cutoff: float = Field(
        gt=0.0, lt=1.0, description="a detection needs the windowed mean probability above this"
    )
    sliding_window_size: int = Field(
        gt=0, description="how many model outputs (one per stride) the mean is taken over"
    )
    step_size_ms: int = Field(
        default=FRONTEND_STEP_MS, gt=0, description="feature step; the frontend computes 10 ms"
    )
    refractory_ms: int = Field(
        default=1000, ge=0, description="after a detection, no other for at least this long"
    )


class _StatefulBackend(Protocol):
    def reset_state(self) -> None: ...


# -- features ---------------------------------------------------------------------------


def _import_frontend() -> Any:
    try:
        from pymicro_features import MicroFrontend  # type: ignore[import-untyped]  # no py.typed
    except ImportError as exc:
        raise BackendUnavailableError(
            "keyword spotting needs pymicro-features: pip install 'edgewise[audio]'"
        ) from exc
    return MicroFrontend


def to_pcm16(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] → int16 (the inverse of ``/ 32768``), clipped."""
    scaled = np.rint(samples.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


class FeatureStream:
    """Samples in, frontend features out: feature ``k`` covers samples
    ``[k * hop, k * hop + window)``. Chunk boundaries do not change the result."""

    def __init__(self, hop: int = FRONTEND_RATE * FRONTEND_STEP_MS // 1000) -> None:
        self._frontend = _import_frontend()()
        self.hop = hop
        self.window = FRONTEND_RATE * FRONTEND_WINDOW_MS // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self.count = 0  # features produced since reset

    def reset(self) -> None:
        self._frontend.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self.count = 0

    def push(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
        """Features for the complete hops in ``pcm`` plus what was pending, as (n, channels)."""
        buf = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        hop, i, out = self.hop, 0, []
        process = self._frontend.process_samples
        while i + hop <= buf.shape[0]:
            result = process(buf[i : i + hop].tobytes())
            i += int(result.samples_read)
            if result.features:
                out.append(result.features)
        self._pending = buf[i:].copy()
        self.count += len(out)
        if not out:
            return np.zeros((0, FRONTEND_CHANNELS), dtype=np.float64)
        return np.asarray(out, dtype=np.float64)


# -- decision ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """A detection at model step ``step``, scored by the windowed mean ``score``."""

    step: int
    score: float


class SlidingDecision:
    """Fires when the mean of the last ``window`` probabilities rises above ``cutoff``;
    re-arms once the mean is back at or below it and ``refractory`` steps have passed
    since the firing. Steps before the window is full never fire."""

    def __init__(self, window: int, cutoff: float, refractory: int) -> None:
        self.window = window
        self.cutoff = cutoff
        self.refractory = refractory
        self._probs: deque[float] = deque(maxlen=window)
        self.reset()

    def reset(self) -> None:
        self._probs.clear()
        self.step = 0  # steps seen since reset
        self._quiet_until = 0
        self._armed = True
        self.last_mean = 0.0

    def push(self, prob: float) -> Firing | None:
        step = self.step
        self.step += 1
        self._probs.append(prob)
        if len(self._probs) < self.window:
            self.last_mean = 0.0
            return None
        mean = math.fsum(self._probs) / self.window
        self.last_mean = mean
        if mean <= self.cutoff:
            self._armed = True
            return None
        if not self._armed or step < self._quiet_until:
            return None
        self._armed = False
        self._quiet_until = step + 1 + self.refractory
        return Firing(step, mean)


# -- the detector -----------------------------------------------------------------------


class MicroWakeWord(BackendDetector):
    """An ``AudioDetector`` that returns one ``Segment`` per wake-word detection."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        spec = manifest.input
        if not isinstance(spec, AudioInput):
            raise ManifestError(f"{manifest.name}: input.kind must be 'audio' for micro_wakeword")
        if spec.sample_rate != FRONTEND_RATE:
            raise ManifestError(
                f"{manifest.name}: input.sample_rate is {spec.sample_rate}; microWakeWord "
                f"features are computed at {FRONTEND_RATE} Hz"
            )
        if params.step_size_ms != FRONTEND_STEP_MS:
            raise ManifestError(
                f"{manifest.name}: decoder.step_size_ms is {params.step_size_ms}; the "
                f"pymicro-features frontend computes {FRONTEND_STEP_MS} ms steps"
            )
        hop = spec.sample_rate * params.step_size_ms // 1000
        if spec.window != hop:
            raise ManifestError(
                f"{manifest.name}: input.window is {spec.window}; it must be the samples "
                f"per feature step ({hop})"
            )
        if not hasattr(backend, "reset_state"):
            raise ManifestError(
                f"{manifest.name}: backend {backend.name!r} cannot reset the model's streaming "
                "state; run micro_wakeword models with the tflite backend"
            )
        self._tin, self._tout = _check_tensors(manifest.name, backend)
        assert self._tin.quantization is not None and self._tout.quantization is not None
        self.manifest = manifest
        self.params = params
        self.times = StageTimes()
        self._backend = backend
        self._label = manifest.labels[0] if manifest.labels else manifest.name
        self._rate = spec.sample_rate
        self.stride = self._tin.shape[1]
        step_ms = self.stride * params.step_size_ms
        self._decision = SlidingDecision(
            params.sliding_window_size,
            params.probability_cutoff,
            -(-params.refractory_ms // step_ms),
        )
        self._features = FeatureStream(hop)
        q = self._tin.quantization
        self._in_scale, self._in_zero = q.scale, float(q.zero_point)
        info = np.iinfo(cast("np.dtype[np.integer[Any]]", self._tin.dtype))  # checked above
        self._in_clip = (float(info.min), float(info.max))
        self._out_scale = self._tout.quantization.scale
        self._out_zero = float(self._tout.quantization.zero_point)
        self._feeds: dict[str, Array] = {}
        self._block = np.zeros((0, FRONTEND_CHANNELS), dtype=np.float64)
        self.probabilities: list[float] | None = None  # set to [] to record raw outputs

    @property
    def score_threshold(self) -> float:
        return self._decision.cutoff

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self._decision.cutoff = value

    # -- the AudioDetector interface ------------------------------------------------

    def reset(self) -> None:
        backend: Any = self._backend
        state: _StatefulBackend = backend
        state.reset_state()
        self._features.reset()
        self._decision.reset()
        self._block = np.zeros((0, FRONTEND_CHANNELS), dtype=np.float64)
        if self.probabilities is not None:
            self.probabilities = []

    def feed(self, samples: Audio) -> list[Segment]:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise InputError(f"KWS expects mono 1-D samples, got shape {x.shape}; average channels")
        t0 = time.perf_counter()
        feats = self._features.push(to_pcm16(x))
        if self._block.shape[0]:
            feats = np.concatenate([self._block, feats])
        t1 = time.perf_counter()
        out: list[Segment] = []
        n_full = feats.shape[0] // self.stride * self.stride
        if n_full:
            blocks = self._quantize(feats[:n_full]).reshape(-1, 1, self.stride, FRONTEND_CHANNELS)
            for block in blocks:
                firing = self._decision.push(self._invoke(block))
                if firing is not None:
                    out.append(self._segment(firing))
        self._block = feats[n_full:].copy()
        t2 = time.perf_counter()
        self.times.ms["features"] = (t1 - t0) * 1000.0
        self.times.ms["infer"] = (t2 - t1) * 1000.0
        return out

    def flush(self) -> list[Segment]:
        """End of stream: leftover features short of a stride are dropped; the stream resets."""
        self.reset()
        return []

    @property
    def active(self) -> Segment | None:
        return None  # a detection is a moment, returned by ``feed`` as it happens

    # -- internals --------------------------------------------------------------------

    def _quantize(self, feats: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        # float64, divided, as pymicro-wakeword does: the same rounding at ties
        q = feats / self._in_scale + self._in_zero
        np.rint(q, out=q)
        np.clip(q, *self._in_clip, out=q)
        return q.astype(self._tin.dtype)

    def _invoke(self, block: npt.NDArray[Any]) -> float:
        self._feeds[self._tin.name] = block
        (raw,) = self._backend.run(self._feeds)
        prob = self._out_scale * (float(raw.reshape(-1)[0]) - self._out_zero)
        if self.probabilities is not None:
            self.probabilities.append(prob)
        return prob

    def _segment(self, firing: Firing) -> Segment:
        """The audio of the features in the sliding window that ends at ``firing.step``."""
        hop, stride = self._features.hop, self.stride
        first_feature = (firing.step - self._decision.window + 1) * stride
        last_feature = firing.step * stride + stride - 1
        start = first_feature * hop
        end = last_feature * hop + self._features.window
        return Segment(self._label, start / self._rate, end / self._rate, firing.score)


def _check_tensors(name: str, backend: Backend) -> tuple[TensorSpec, TensorSpec]:
    if len(backend.inputs) != 1 or len(backend.outputs) != 1:
        raise ManifestError(
            f"{name}: model has {len(backend.inputs)} inputs and {len(backend.outputs)} outputs; "
            "micro_wakeword needs 1 and 1 (is this a microWakeWord streaming model?)"
        )
    tin, tout = backend.inputs[0], backend.outputs[0]
    if len(tin.shape) != 3 or tin.shape[0] != 1 or tin.shape[2] != FRONTEND_CHANNELS:
        raise ManifestError(
            f"{name}: input {tin.name!r} has shape {tin.shape}; micro_wakeword needs "
            f"[1, stride, {FRONTEND_CHANNELS}]"
        )
    if tin.shape[1] < 1:
        raise ManifestError(f"{name}: input {tin.name!r} has a dynamic stride; fix its shape")
    for t in (tin, tout):
        if not np.issubdtype(t.dtype, np.integer) or t.quantization is None:
            raise ManifestError(
                f"{name}: tensor {t.name!r} is {t.dtype} without quantization; micro_wakeword "
                "needs the int8/uint8 quantized streaming model"
            )
    return tin, tout


def build(manifest: Manifest, backend: Backend, params: Params) -> MicroWakeWord:
    return MicroWakeWord(manifest, backend, params)
