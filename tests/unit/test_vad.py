"""The streaming VAD's mechanics with a scripted backend (no model).

Ground truth: hand-computed segments for small probability scripts, and
segments that silero-vad 6.2.3's own ``get_speech_timestamps_from_probs``
produced for seeded probability sequences (tests/fixtures/vad_reference.json,
written by scripts/make_vad_reference.py), which must match to the sample.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from edge.detectors import decoder_entry
from edge.detectors.base import Segment
from edge.detectors.vad import Params, SileroVad
from edge.errors import InputError, ManifestError
from edge.models import zoo
from edge.runtime.base import Array, TensorSpec
from tests.fixtures.speech import REFERENCE

WIN, CTX, SR = 512, 64, 16000
F32, I64 = np.dtype(np.float32), np.dtype(np.int64)


class ScriptedBackend:
    """Returns scripted probabilities; records each input window and the state it got."""

    name = "scripted"

    def __init__(self, probs: list[float]) -> None:
        self.probs = list(probs)
        self.windows: list[Array] = []
        self.states: list[float] = []
        self.closed = False

    @property
    def inputs(self) -> list[TensorSpec]:
        return [
            TensorSpec("input", (-1, -1), F32),
            TensorSpec("state", (2, -1, 128), F32),
            TensorSpec("sr", (), I64),
        ]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("output", (-1, 1), F32), TensorSpec("stateN", (2, -1, 128), F32)]

    def run(self, feeds: dict[str, Array]) -> list[Array]:
        assert feeds["input"].shape == (1, CTX + WIN) and int(feeds["sr"]) == SR
        k = len(self.windows)
        self.windows.append(feeds["input"].copy())
        self.states.append(float(feeds["state"].flat[0]))
        p = self.probs[k] if k < len(self.probs) else 0.0
        state = np.asarray(feeds["state"], dtype=np.float32) + 1.0
        return [np.array([[p]], dtype=np.float32), state]

    def close(self) -> None:
        self.closed = True


def make(probs: list[float], **params: Any) -> tuple[SileroVad, ScriptedBackend]:
    backend = ScriptedBackend(probs)
    return SileroVad(zoo.get("silero-vad"), backend, Params(**params)), backend


def spans(segs: list[Segment]) -> list[tuple[int, int]]:
    """Segments in samples."""
    return [(round(s.start * SR), round(s.end * SR)) for s in segs]


def script(*runs: tuple[float, int]) -> list[float]:
    return [p for p, n in runs for _ in range(n)]


def test_one_segment_closes_during_feed() -> None:
    # speech windows 10..29: raw [5120, 15360); silence from window 30 closes it at
    # window 34 (2048 >= 1600 samples); pad 480 each side → [4640, 15840]
    vad, _ = make(script((0.0, 10), (0.9, 20), (0.0, 10)))
    closed = vad.feed(np.zeros(40 * WIN, np.float32))
    assert spans(closed) == [(4640, 15840)]
    assert closed[0].label == "speech" and closed[0].score == pytest.approx(0.9)
    assert vad.flush() == []


def test_short_burst_is_dropped() -> None:
    vad, _ = make(script((0.0, 10), (0.9, 5), (0.0, 10)))  # 2560 samples < 250 ms
    assert vad.detect_samples(np.zeros(25 * WIN, np.float32)) == []


def test_close_segments_split_the_gap_and_clamp_at_zero() -> None:
    # pad 1600 > half the 1536-sample gap: both sides get 768; the first start clamps at 0
    vad, _ = make(
        script((0.0, 2), (0.9, 10), (0.0, 3), (0.9, 10), (0.0, 5)),
        speech_pad_ms=100,
        min_silence_ms=50,
    )
    segs = vad.detect_samples(np.zeros(30 * WIN, np.float32))
    assert spans(segs) == [(0, 6912), (6912, 14400)]


def test_speech_to_the_end_is_clamped_to_the_stream_length() -> None:
    n = 20 * WIN - 100
    vad, _ = make(script((0.0, 2), (0.9, 18)))
    segs = vad.detect_samples(np.zeros(n, np.float32))
    assert spans(segs) == [(544, n)]


def test_odd_chunks_match_one_call_and_carry_context_and_state() -> None:
    rng = np.random.default_rng(0)
    audio = rng.uniform(-1, 1, 30 * WIN + 77).astype(np.float32)
    probs = script((0.0, 5), (0.8, 15), (0.1, 11))
    whole, backend_whole = make(probs)
    expected = whole.detect_samples(audio)
    vad, backend = make(probs)
    got: list[Segment] = []
    pos = 0
    for size in [1, 700, 511, 3, 4000, 13, 2000] * 10:
        got += vad.feed(audio[pos : pos + size])
        pos += size
        if pos >= audio.size:
            break
    got += vad.flush()
    assert spans(got) == spans(expected) and len(got) == 1
    windows = backend.windows
    assert len(windows) == 31  # 30 full windows + the zero-padded tail
    for k, w in enumerate(windows[:30]):
        np.testing.assert_array_equal(w[0, CTX:], audio[k * WIN : (k + 1) * WIN])
        prev = np.zeros(CTX, np.float32) if k == 0 else audio[k * WIN - CTX : k * WIN]
        np.testing.assert_array_equal(w[0, :CTX], prev)
    np.testing.assert_array_equal(windows[30][0, CTX : CTX + 77], audio[-77:])
    assert not windows[30][0, CTX + 77 :].any()
    assert backend.states == [float(k) for k in range(31)]  # the state is threaded through
    assert backend_whole.states == backend.states


def test_active_segment_and_reset() -> None:
    vad, backend = make(script((0.0, 4), (0.9, 10)))
    assert vad.feed(np.zeros(14 * WIN, np.float32)) == []
    active = vad.active
    assert active is not None and active.start == (4 * WIN - 480) / SR
    assert active.end == 14 * WIN / SR
    vad.reset()
    assert vad.active is None
    vad.feed(np.zeros(WIN, np.float32))
    assert backend.states[-1] == 0.0  # state zeroed by reset
    vad.close()
    assert backend.closed


def test_rejects_multichannel_input() -> None:
    vad, _ = make([])
    with pytest.raises(InputError, match="mono"):
        vad.feed(np.zeros((2, 512), np.float32))


def test_params_validated_through_the_registry() -> None:
    manifest = zoo.get("silero-vad")
    _, params = decoder_entry(manifest, "silero-vad")
    assert isinstance(params, Params) and params.effective_neg_threshold == pytest.approx(0.35)
    bad_decoder = type(manifest.decoder).model_validate({"type": "silero_vad", "threshhold": 0.4})
    bad = manifest.model_copy(update={"decoder": bad_decoder})
    with pytest.raises(ManifestError, match="threshhold"):
        decoder_entry(bad, "m.json")
    with pytest.raises(ValueError, match="neg_threshold"):
        Params(threshold=0.4, neg_threshold=0.6)


REF_CASES = json.loads(REFERENCE.read_text())["prob_cases"]


@pytest.mark.parametrize("case", REF_CASES, ids=[json.dumps(c["params"]) for c in REF_CASES])
def test_matches_silero_get_speech_timestamps_from_probs(case: dict[str, Any]) -> None:
    vad, _ = make(case["probs"], **case["params"])
    segs = vad.detect_samples(np.zeros(case["length"], np.float32))
    assert spans(segs) == [tuple(s) for s in case["segments"]]
    assert len(case["segments"]) >= 3  # the case exercises several segments


def test_score_threshold_override_moves_the_hysteresis() -> None:
    # 0.45 is below the default threshold 0.5: no speech; at 0.4 it is speech
    probs = script((0.0, 4), (0.45, 20), (0.0, 10))
    vad, _ = make(probs)
    assert vad.detect_samples(np.zeros(34 * WIN, np.float32)) == []
    vad, _ = make(probs)
    vad.score_threshold = 0.4
    assert spans(vad.detect_samples(np.zeros(34 * WIN, np.float32))) == [(1568, 12768)]
