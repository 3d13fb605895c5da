"""Streaming voice activity detection over Silero VAD (``decoder.type = "silero_vad"``).

The model takes one window (512 samples at 16 kHz) with the last ``context``
samples of the previous window prepended, plus a recurrent state that it hands
back. This detector keeps both across ``feed`` calls, buffers partial windows,
and turns per-window speech probabilities into segments with the same rules as
silero-vad's ``get_speech_timestamps`` (hysteresis between ``threshold`` and
``neg_threshold``, minimum speech and silence, padding split evenly where two
segments are closer than twice the pad, optional maximum length cut at the
longest pause), but incrementally: a segment is returned once its padded end
can no longer change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.detectors.base import Audio, BackendDetector, Segment, StageTimes
from edge.errors import InputError, ManifestError
from edge.models.manifest import AudioInput, Manifest
from edge.runtime.base import Array, Backend

# get_speech_timestamps' default: pauses shorter than this are not cut points at max length
_MIN_SILENCE_AT_MAX_SPEECH_MS = 98


class Params(BaseModel):
    """The manifest's ``decoder`` table for ``silero_vad``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="a window with probability >= this starts speech"
    )
    neg_threshold: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="in speech, a window below this counts as silence (default threshold - 0.15)",
    )
    min_speech_ms: int = Field(default=250, ge=0, description="shorter segments are dropped")
    min_silence_ms: int = Field(default=100, ge=0, description="silence this long ends a segment")
    speech_pad_ms: int = Field(default=30, ge=0, description="added to each side of a segment")
    max_speech_s: float | None = Field(
        default=None, gt=0.0, description="longer segments are cut at their longest pause"
    )

    @model_validator(mode="after")
    def _neg_below_threshold(self) -> Params:
        if self.neg_threshold is not None and self.neg_threshold > self.threshold:
            raise ValueError(
                f"neg_threshold ({self.neg_threshold}) must not exceed threshold ({self.threshold})"
            )
        return self

    @property
    def effective_neg_threshold(self) -> float:
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)


@dataclass(slots=True)
class _Raw:
    """A closed, kept segment before padding, in samples; ``pad_start`` is final already."""

    start: int
    end: int
    score: float
    pad_start: int


class SileroVad(BackendDetector):
    """An ``AudioDetector``: push samples with ``feed``, get closed speech segments back."""

    def __init__(self, manifest: Manifest, backend: Backend, params: Params) -> None:
        spec = manifest.input
        if not isinstance(spec, AudioInput):
            raise ManifestError(f"{manifest.name}: input.kind must be 'audio' for silero_vad")
        names = {t.name: t for t in backend.inputs}
        if "input" not in names or "state" not in names:
            raise ManifestError(
                f"{manifest.name}: model inputs are {sorted(names)}; silero_vad needs "
                "'input' and 'state' (is this a Silero VAD v5/v6 ONNX file?)"
            )
        if len(backend.outputs) != 2:
            raise ManifestError(
                f"{manifest.name}: model has {len(backend.outputs)} outputs; silero_vad needs "
                "2 (speech probability, next state)"
            )
        self.manifest = manifest
        self.params = params
        self.times = StageTimes()
        self._backend = backend
        self._label = manifest.labels[0] if manifest.labels else "speech"
        self._rate = spec.sample_rate
        self._win = spec.window
        self._ctx = spec.context
        state_shape = tuple(d if d > 0 else 1 for d in names["state"].shape)
        self._state0 = np.zeros(state_shape, dtype=np.float32)
        self._buf = np.zeros((1, self._ctx + self._win), dtype=np.float32)
        self._feeds: dict[str, Array] = {"input": self._buf, "state": self._state0}
        if "sr" in names:
            self._feeds["sr"] = np.array(self._rate, dtype=np.int64)
        self._partial = np.zeros(self._win, dtype=np.float32)
        sr = self._rate
        self.score_threshold = params.threshold
        self._min_speech = sr * params.min_speech_ms / 1000
        self._min_silence = sr * params.min_silence_ms / 1000
        self._pad = int(sr * params.speech_pad_ms / 1000)
        self._max_speech = (
            sr * params.max_speech_s - self._win - 2 * self._pad
            if params.max_speech_s is not None
            else float("inf")
        )
        self._min_sil_at_max = sr * _MIN_SILENCE_AT_MAX_SPEECH_MS / 1000
        self.reset()

    @property
    def score_threshold(self) -> float:
        """The speech threshold; setting it moves ``neg_threshold`` with it unless it was pinned."""
        return self._th

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self._th = value
        neg = self.params.neg_threshold
        self._neg = neg if neg is not None and neg <= value else max(value - 0.15, 0.01)

    # -- stream state ---------------------------------------------------------------

    def reset(self) -> None:
        self._buf[:] = 0.0
        self._feeds["state"] = self._state0
        self._npartial = 0
        self._frame = 0  # windows run so far
        self._fed = 0  # samples fed so far
        self._triggered = False
        self._start = 0
        self._temp_end = 0
        self._possible_ends: list[tuple[int, int]] = []
        self._probs: list[float] = []  # probabilities of the open segment's windows
        self._probs_from = 0  # window index of self._probs[0]
        self._last_kept_end: int | None = None  # raw end of the last kept segment
        self._pending: _Raw | None = None  # kept, waiting for its padded end
        self._out: list[Segment] = []

    # -- the AudioDetector interface ------------------------------------------------

    def feed(self, samples: Audio) -> list[Segment]:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise InputError(f"VAD expects mono 1-D samples, got shape {x.shape}; average channels")
        with self.times.stage("infer"):
            self._consume(x)
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Segment]:
        """Close the stream (the last partial window is zero-padded, as silero-vad does); reset."""
        with self.times.stage("infer"):
            if self._npartial:
                self._partial[self._npartial :] = 0.0
                self._run_window(self._partial)
            length = self._fed
            if self._triggered and length - self._start > self._min_speech:
                self._keep(self._start, length, self._score_until(length))
            self._triggered = False
            if self._pending is not None:
                self._emit(self._pending, min(length, self._pending.end + self._pad))
                self._pending = None
        out = self._out
        self.reset()
        return out

    @property
    def active(self) -> Segment | None:
        if not self._triggered:
            return None
        probs = self._probs
        score = sum(probs) / len(probs) if probs else 0.0
        return Segment(
            self._label, self._padded_start(self._start) / self._rate, self._fed / self._rate, score
        )

    def detect_samples(self, samples: Audio) -> list[Segment]:
        """Segments of a whole recording (the stream is reset before and after)."""
        self.reset()
        return self.feed(samples) + self.flush()

    # -- the hot loop -----------------------------------------------------------------

    def _consume(self, x: npt.NDArray[np.float32]) -> None:
        win, n, i = self._win, x.shape[0], 0
        self._fed += n
        if self._npartial:
            take = min(win - self._npartial, n)
            self._partial[self._npartial : self._npartial + take] = x[:take]
            self._npartial += take
            i = take
            if self._npartial < win:
                return
            self._npartial = 0
            self._run_window(self._partial)
        while i + win <= n:
            self._run_window(x[i : i + win])
            i += win
        if i < n:
            self._partial[: n - i] = x[i:]
            self._npartial = n - i

    def _run_window(self, window: npt.NDArray[np.float32]) -> None:
        buf, ctx, feeds = self._buf, self._ctx, self._feeds
        buf[0, ctx:] = window
        prob, state = self._backend.run(feeds)
        feeds["state"] = state
        if ctx:
            buf[0, :ctx] = buf[0, -ctx:]
        self._step(prob.item(), self._frame * self._win)
        self._frame += 1

    # -- hysteresis, as get_speech_timestamps, one window at a time -------------------

    def _step(self, p: float, cur: int) -> None:
        speech = p >= self._th
        if self._triggered:
            self._probs.append(p)
        if speech and self._temp_end:
            sil = cur - self._temp_end
            if sil > self._min_sil_at_max:
                self._possible_ends.append((self._temp_end, sil))
            self._temp_end = 0
        if speech and not self._triggered:
            self._open(cur, [p])
            return
        if self._triggered and cur - self._start > self._max_speech:
            if self._possible_ends:
                end, dur = max(self._possible_ends, key=lambda e: e[1])
                self._keep(self._start, end, self._score_until(end))
                self._possible_ends = []
                self._temp_end = 0
                restart = end + dur
                if restart < end + cur:
                    self._open(restart, self._probs[(restart // self._win) - self._probs_from :])
                else:
                    self._triggered = False
            else:
                self._keep(self._start, cur, self._score_until(cur))
                self._triggered = False
                self._temp_end = 0
                self._settle(cur)
                return
        if p < self._neg and self._triggered:
            if not self._temp_end:
                self._temp_end = cur
            if cur - self._temp_end < self._min_silence:
                return
            end = self._temp_end
            if end - self._start > self._min_speech:
                self._keep(self._start, end, self._score_until(end))
            self._triggered = False
            self._temp_end = 0
            self._possible_ends = []
        if not self._triggered:
            self._settle(cur)

    def _open(self, start: int, probs: list[float]) -> None:
        self._triggered = True
        self._start = start
        self._probs = probs
        self._probs_from = start // self._win

    def _score_until(self, end: int) -> float:
        n = max(1, -(-(end - self._start) // self._win))
        probs = self._probs[:n]
        return sum(probs) / len(probs) if probs else 0.0

    # -- padding: a segment's end is final once the next kept segment's start is known --

    def _padded_start(self, start: int) -> int:
        prev = self._last_kept_end
        if prev is not None and start - prev < 2 * self._pad:
            return max(0, start - (start - prev) // 2)
        return max(0, start - self._pad)

    def _keep(self, start: int, end: int, score: float) -> None:
        seg = _Raw(start, end, score, self._padded_start(start))
        if self._pending is not None:
            gap = start - self._pending.end
            end_pad = gap // 2 if gap < 2 * self._pad else self._pad
            self._emit(self._pending, self._pending.end + end_pad)
        self._pending = seg
        self._last_kept_end = end

    def _settle(self, cur: int) -> None:
        """Out of speech at window ``cur``: any later segment starts at cur + window or after."""
        pending = self._pending
        if pending is not None and cur + self._win - pending.end >= 2 * self._pad:
            self._emit(pending, pending.end + self._pad)
            self._pending = None

    def _emit(self, seg: _Raw, end: int) -> None:
        rate = self._rate
        self._out.append(Segment(self._label, seg.pad_start / rate, end / rate, seg.score))


def build(manifest: Manifest, backend: Backend, params: Params) -> SileroVad:
    return SileroVad(manifest, backend, params)
