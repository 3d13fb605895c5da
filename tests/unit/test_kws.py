"""micro_wakeword mechanics on synthetic inputs: PCM conversion, feature framing,
the sliding-window decision, quantization of the model input and segment spans.

The model is a fake backend that hands back scripted probabilities; the manifest
is the zoo's okay-nabu one (no model file is read).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.detectors import decoder_entry, set_threshold
from edge.detectors.kws import (
    FeatureStream,
    Firing,
    MicroWakeWord,
    Params,
    SlidingDecision,
    build,
    to_pcm16,
)
from edge.errors import ManifestError
from edge.models import zoo
from edge.models.manifest import Manifest
from edge.runtime.base import Array, Quantization, TensorSpec

pytest.importorskip("pymicro_features", reason="pymicro-features (the audio extra) is missing")

RATE = 16000
HOP = 160  # 10 ms
WINDOW = 480  # 30 ms


class ScriptedBackend:
    """A stand-in for the int8 streaming model: [1, 3, 40] int8 in, [1, 1] uint8 out."""

    name = "tflite"

    def __init__(self, probs: list[float]) -> None:
        self.probs = probs
        self.calls: list[Array] = []
        self.resets = 0
        self.inputs = [TensorSpec("in", (1, 3, 40), np.dtype(np.int8), Quantization(0.1, -128))]
        self.outputs = [TensorSpec("out", (1, 1), np.dtype(np.uint8), Quantization(1 / 256, 0))]

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        self.calls.append(feeds["in"].copy())
        p = self.probs[len(self.calls) - 1] if len(self.calls) <= len(self.probs) else 0.0
        return [np.array([[min(255, round(p * 256))]], dtype=np.uint8)]

    def reset_state(self) -> None:
        self.resets += 1
        self.calls = []

    def close(self) -> None:
        pass


@pytest.fixture
def manifest() -> Manifest:
    return zoo.get("okay-nabu")


def detector(manifest: Manifest, probs: list[float], **decoder: object) -> MicroWakeWord:
    params = Params.model_validate({**manifest.decoder.params, **decoder})
    return build(manifest, ScriptedBackend(probs), params)


def noise(seconds: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


# -- PCM and features ----------------------------------------------------------------------


def test_pcm16_inverts_the_wav_reader_scale_and_clips() -> None:
    ints = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    assert np.array_equal(to_pcm16((ints / 32768.0).astype(np.float32)), ints)
    assert to_pcm16(np.array([1.5, -1.5], dtype=np.float32)).tolist() == [32767, -32768]


@pytest.mark.parametrize("n", [0, 479, 480, 639, 640, 16000])
def test_feature_count_is_one_per_hop_after_the_first_window(n: int) -> None:
    # ground truth: 30 ms windows every 10 ms → floor((n - 480) / 160) + 1 features
    feats = FeatureStream().push(to_pcm16(noise(n / RATE)))
    assert feats.shape == (max(0, (n - WINDOW) // HOP + 1), 40)


def test_features_do_not_depend_on_chunk_boundaries() -> None:
    pcm = to_pcm16(noise(1.0))
    whole = FeatureStream().push(pcm)
    stream = FeatureStream()
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(np.arange(1, pcm.size), size=40, replace=False))
    parts = [stream.push(c) for c in np.split(pcm, cuts)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert stream.count == whole.shape[0] == 98


def test_feature_reset_starts_a_new_stream() -> None:
    pcm = to_pcm16(noise(0.5))
    stream = FeatureStream()
    first = stream.push(pcm)
    stream.push(to_pcm16(noise(0.3, seed=9)))
    stream.reset()
    assert np.array_equal(stream.push(pcm), first)


# -- the decision ---------------------------------------------------------------------------


def run(decision: SlidingDecision, probs: list[float]) -> list[Firing]:
    return [f for f in (decision.push(p) for p in probs) if f is not None]


def test_nothing_fires_before_the_window_is_full() -> None:
    assert run(SlidingDecision(3, 0.5, 0), [1.0, 1.0]) == []
    assert run(SlidingDecision(3, 0.5, 0), [1.0, 1.0, 1.0]) == [Firing(2, 1.0)]


def test_the_mean_must_exceed_the_cutoff() -> None:
    # means over 3 from step 2: 0.5, 0.5, 0.6 → only step 4 (0.3, 0.9, 0.6) is above 0.5
    probs = [0.9, 0.3, 0.3, 0.9, 0.6]
    fired = run(SlidingDecision(3, 0.5, 0), probs)
    assert [f.step for f in fired] == [4] and fired[0].score == pytest.approx(0.6)


def test_a_plateau_fires_once_and_rearms_after_falling() -> None:
    high, low = [1.0] * 20, [0.0] * 3
    # window 2, no refractory: fires at 1 (first full window), re-arms at step 20
    # (mean 0.5 <= 0.5), fires again at 24 (window 23..24 = 1.0, 1.0)
    fired = run(SlidingDecision(2, 0.5, 0), high + low + high)
    assert [f.step for f in fired] == [1, 24]


def test_refractory_suppresses_a_quick_second_rise() -> None:
    probs = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert [f.step for f in run(SlidingDecision(2, 0.5, 0), probs)] == [1, 5, 11]
    # refractory 6 steps after step 1: quiet through step 7, so the rise at 5 is lost
    assert [f.step for f in run(SlidingDecision(2, 0.5, 6), probs)] == [1, 11]


# -- the detector ------------------------------------------------------------------------------


def test_input_is_quantized_with_the_tensor_parameters(manifest: Manifest) -> None:
    det = detector(manifest, [])
    det.feed(noise(0.19))
    backend = det._backend
    assert isinstance(backend, ScriptedBackend)
    feats = FeatureStream().push(to_pcm16(noise(0.19)))  # 17 features → 5 calls, 2 left over
    assert len(backend.calls) == 5
    first = backend.calls[0]
    assert first.dtype == np.int8 and first.shape == (1, 3, 40)
    expected = np.clip(np.rint(feats[:3] / 0.1 - 128), -128, 127).astype(np.int8)
    assert np.array_equal(first[0], expected)


def test_detection_span_is_the_sliding_window_audio(manifest: Manifest) -> None:
    # window 5, stride 3: a firing at model step 9 covers features 15..29, i.e.
    # samples 15*160 = 2400 to 29*160 + 480 = 5120 → 0.15 s to 0.32 s
    probs = [0.0] * 5 + [1.0] * 10
    det = detector(manifest, probs)
    det.probabilities = []
    segs = det.feed(noise(1.0))
    assert len(segs) == 1
    seg = segs[0]
    assert (seg.label, seg.start, seg.end) == ("okay nabu", 0.15, 0.32)
    assert seg.score == 255 / 256  # 1.0 saturates the uint8 output
    assert det.probabilities[:6] == [0.0] * 5 + [255 / 256]
    assert det.active is None


def test_chunked_feeding_gives_the_same_segments(manifest: Manifest) -> None:
    probs = [0.0] * 10 + [0.95] * 8 + [0.0] * 50 + [0.95] * 8
    audio = noise(3.0)
    whole = detector(manifest, probs).feed(audio)
    det = detector(manifest, probs)
    chunked = [s for c in np.array_split(audio, 137) for s in det.feed(c)]
    assert chunked == whole
    assert len(whole) == 2  # the rises are 58 steps (1.74 s) apart, beyond the 1 s refractory


def test_reset_resets_model_state_features_and_window(manifest: Manifest) -> None:
    det = detector(manifest, [1.0] * 200)
    backend = det._backend
    assert isinstance(backend, ScriptedBackend)
    assert len(det.feed(noise(0.5))) == 1
    det.reset()
    assert backend.resets == 1
    assert len(det.feed(noise(0.5))) == 1  # fires again: the decision re-armed
    assert det.flush() == [] and backend.resets == 2


def test_threshold_override_moves_the_cutoff(manifest: Manifest) -> None:
    det = detector(manifest, [0.8] * 20)
    assert det.score_threshold == 0.85 and det.feed(noise(0.5)) == []
    det.reset()
    set_threshold(det, 0.7)
    assert len(det.feed(noise(0.5))) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"input": {"kind": "audio", "sample_rate": 16000, "window": 320}}, "input.window"),
        ({"input": {"kind": "audio", "sample_rate": 8000, "window": 80}}, "input.sample_rate"),
        ({"decoder": {"step_size_ms": 20}}, "decoder.step_size_ms"),
    ],
)
def test_inconsistent_manifests_are_refused(
    manifest: Manifest, change: dict[str, object], field: str
) -> None:
    data = manifest.model_dump()
    for key, value in change.items():
        assert isinstance(value, dict)
        data[key] = {**data[key], **value}
    bad = Manifest.model_validate(data)
    with pytest.raises(ManifestError, match=field):
        _, params = decoder_entry(bad, "m.json")
        build(bad, ScriptedBackend([]), params)  # type: ignore[arg-type]  # Params checked above


def test_unknown_decoder_parameter_is_refused(manifest: Manifest, tmp_path: Path) -> None:
    data = manifest.model_dump()
    data["decoder"] = {**data["decoder"], "cutoff": 0.5}
    with pytest.raises(ManifestError, match=r"decoder\.cutoff"):
        decoder_entry(Manifest.model_validate(data), str(tmp_path / "m.json"))
