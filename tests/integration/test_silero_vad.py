"""Silero VAD (zoo model, real onnxruntime) on real synthesised speech.

Ground truth:
- ``speech_16k.wav`` (committed; built by scripts/make_vad_reference.py from
  espeak-ng sentences, silence and -40 dBFS pink/white noise) with the sample
  spans of each trimmed sentence, stored in ``vad_reference.json``;
- the segments silero-vad 6.2.3's own ``get_speech_timestamps`` (ONNX) found
  on that WAV with the same parameters, stored in the same file.

Frame scoring: 32 ms frames (512 samples). A frame is speech in truth if its
centre lies inside a span, predicted speech if its centre lies inside a
segment. Frames whose centre lies within 64 ms outside a span edge (the 30 ms
pad plus one window of detection latency) are not counted either way.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from edge.detectors import build_detector
from edge.detectors.base import Segment
from edge.detectors.vad import SileroVad
from edge.models.resolve import ResolvedModel
from edge.runtime import BackendOptions, load_backend
from tests.fixtures.speech import (
    COMMITTED,
    REFERENCE,
    SpeechClip,
    build_speech,
    committed_clip,
    espeak_available,
    sha256_of,
)

FRAME = 512
TOLERANCE_S = 0.064
MATCH_TOLERANCE_S = 0.064  # vs silero-vad's own segments (two windows)


@pytest.fixture(scope="module")
def vad(zoo_model: Callable[[str], ResolvedModel]) -> SileroVad:
    model = zoo_model("silero-vad")
    backend = load_backend(model.path, BackendOptions(threads=1))
    det = build_detector(model.manifest, backend, model.origin)
    assert isinstance(det, SileroVad)
    return det


def frame_scores(clip: SpeechClip, segs: list[Segment]) -> tuple[float, float]:
    """(precision, recall) over 32 ms frames, ignoring frames near a span edge."""
    n = clip.samples.size // FRAME
    centres = (np.arange(n) * FRAME + FRAME / 2) / clip.rate
    truth = np.zeros(n, bool)
    near = np.zeros(n, bool)
    for a, b in clip.spans:
        s, e = a / clip.rate, b / clip.rate
        truth |= (centres >= s) & (centres < e)
        near |= (centres >= s - TOLERANCE_S) & (centres < e + TOLERANCE_S)
    pred = np.zeros(n, bool)
    for seg in segs:
        pred |= (centres >= seg.start) & (centres < seg.end)
    counted = truth | ~near
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth & counted).sum())
    return tp / max(1, tp + fp), tp / max(1, int(truth.sum()))


def check_clip(vad: SileroVad, clip: SpeechClip) -> list[Segment]:
    segs = vad.detect_samples(clip.samples)
    precision, recall = frame_scores(clip, segs)
    assert precision >= 0.9, f"frame precision {precision:.3f}"
    assert recall >= 0.9, f"frame recall {recall:.3f}"
    for left, right in itertools.pairwise(segs):
        assert left.end <= right.start
    assert segs[0].start >= 0.0 and segs[-1].end <= clip.duration
    # every sentence is covered by some segment, noise pieces alone raise none
    for a, b in clip.spans:
        mid = (a + b) / 2 / clip.rate
        assert any(s.start <= mid <= s.end for s in segs)
    return segs


def test_committed_clip_precision_recall(vad: SileroVad) -> None:
    ref = json.loads(REFERENCE.read_text())
    assert sha256_of(COMMITTED) == ref["wav_sha256"]
    check_clip(vad, committed_clip())


@pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not installed: apt-get install espeak-ng (CI installs it)",
)
def test_freshly_synthesised_clip_precision_recall(
    vad: SileroVad, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clip = build_speech(tmp_path_factory.mktemp("speech"))
    assert len(clip.spans) == 3 and clip.duration > 10
    check_clip(vad, clip)


def test_matches_silero_get_speech_timestamps(vad: SileroVad) -> None:
    ref = json.loads(REFERENCE.read_text())
    clip = committed_clip()
    segs = vad.detect_samples(clip.samples)
    expected = [(a / clip.rate, b / clip.rate) for a, b in ref["segments"]]
    assert len(segs) == len(expected)
    for seg, (start, end) in zip(segs, expected, strict=True):
        assert abs(seg.start - start) <= MATCH_TOLERANCE_S
        assert abs(seg.end - end) <= MATCH_TOLERANCE_S


def test_streaming_in_20ms_chunks_equals_whole_file(vad: SileroVad) -> None:
    clip = committed_clip()
    whole = vad.detect_samples(clip.samples)
    vad.reset()
    streamed: list[Segment] = []
    seen_active = False
    for i in range(0, clip.samples.size, 320):
        streamed += vad.feed(clip.samples[i : i + 320])
        seen_active |= vad.active is not None
    streamed += vad.flush()
    assert seen_active
    assert [s.to_json() for s in streamed] == [s.to_json() for s in whole]
    # the first segment is reported before the stream ends (streaming, not batch)
    vad.reset()
    half = clip.samples[: clip.spans[1][0]]
    assert len(vad.feed(half)) == 1
    vad.reset()


def test_noise_and_silence_alone_give_no_segments(vad: SileroVad) -> None:
    rng = np.random.default_rng(3)
    noise: npt.NDArray[np.float32] = (rng.standard_normal(16000 * 3) * 0.01).astype(np.float32)
    silence = np.zeros(16000 * 2, np.float32)
    assert vad.detect_samples(np.concatenate([silence, noise, silence])) == []
