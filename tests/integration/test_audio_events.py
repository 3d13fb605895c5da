"""Audio streams end to end: WAV source → detector → events with a start and an end.

Ground truth: tests/fixtures/speech_16k.wav holds three espeak-ng sentences whose
sample spans are in vad_reference.json (committed_clip); okay_nabu_16k.wav holds
espeak-ng saying "okay nabu" at 1.00–1.94 s (kws_reference.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config import DetectorConfig, StreamConfig, TrackingConfig
from edge.events import Event
from edge.pipeline import StreamRunner, load_slot
from tests.fixtures.speech import COMMITTED, committed_clip

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def run(wav: Path, model: str, chunk_ms: int = 96) -> tuple[StreamRunner, list[Event]]:
    cfg = StreamConfig(name="mic", source=str(wav), detectors=["d"], chunk_ms=chunk_ms)
    slot = load_slot("d", DetectorConfig(model=model), None, None)
    out: list[Event] = []
    r = StreamRunner(cfg, [slot], TrackingConfig(audio_min_s=0.3), out.extend)
    r.start()
    assert r.done.wait(60)
    r.join(5)
    return r, out


def test_speech_events_at_the_known_times() -> None:
    clip = committed_clip()
    r, evs = run(COMMITTED, "silero-vad")
    t0 = r.source.t0  # type: ignore[attr-defined]
    starts = [e for e in evs if e.phase == "start"]
    ends = [e for e in evs if e.phase == "end"]
    assert len(starts) == len(ends) == len(clip.spans) == 3
    # silero-vad's own get_speech_timestamps on this file (vad_reference.json)
    ref = json.loads((FIXTURES / "vad_reference.json").read_text())["segments"]
    for (a, b), (ra, rb), s, e in zip(clip.spans, ref, starts, ends, strict=True):
        assert s.track_id == e.track_id and s.kind == "audio" and s.label == "speech"
        # the true speech span: the start within 0.1 s; silero-vad's end trails by up to
        # min_silence + pad + a few windows, so the end within 0.4 s
        assert abs(s.started_at - t0 - a / clip.rate) < 0.1
        assert -0.05 < e.ts - t0 - b / clip.rate < 0.4
        # and silero-vad's own segment to one 32 ms window
        assert abs(s.started_at - t0 - ra / clip.rate) <= 0.032
        assert abs(e.ts - t0 - rb / clip.rate) <= 0.032
        # the start is emitted while the sentence is still going (not at its end)
        assert s.ts - t0 < b / clip.rate


@pytest.mark.parametrize("chunk_ms", [32, 250])
def test_keyword_event_for_okay_nabu_only(chunk_ms: int) -> None:
    r, evs = run(FIXTURES / "okay_nabu_16k.wav", "okay-nabu", chunk_ms)
    t0 = r.source.t0  # type: ignore[attr-defined]
    starts = [e for e in evs if e.phase == "start"]
    assert len(starts) == 1 and [e.phase for e in evs].count("end") == 1
    assert 0.9 < starts[0].ts - t0 < 2.6  # during or just after "okay nabu" (1.00–1.94 s)
    _, none = run(COMMITTED, "okay-nabu", chunk_ms)  # three unrelated sentences
    assert none == []
