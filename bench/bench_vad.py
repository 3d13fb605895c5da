"""Silero VAD: our streaming detector vs a bare onnxruntime loop vs silero-vad itself.

    .venv/bin/python bench/bench_vad.py [--runs 21]

The committed test clip (tests/fixtures/speech_16k.wav), repeated and cut to
16.8 s (525 windows of 512 samples). One intra-op thread everywhere. Ours is
``detect_samples`` over the whole file (model calls + hysteresis + padding);
the baseline is the tightest plain loop over the same windows with the same
session options and the same 64-sample context handling (preallocated input).
silero-vad's own ``get_speech_timestamps(onnx=True)`` is timed in the
/tmp/silero-ref-venv interpreter (made by scripts/make_vad_reference.py) when
it exists; only the call is timed, not the import or the model load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.detectors import build_detector  # noqa: E402
from edge.detectors.vad import SileroVad  # noqa: E402
from edge.media.audio import read_audio  # noqa: E402
from edge.models.resolve import resolve  # noqa: E402
from edge.runtime import BackendOptions, load_backend  # noqa: E402
from tests.fixtures.speech import COMMITTED, RATE, write_wav16  # noqa: E402
from tests.support.ref_venv import RefVenvError, ensure_venv  # noqa: E402

SECONDS = 16.8
# the peer runs in its own pinned venv, built on first use (tests/support/ref_venv.py)
REF_VENV = "bench-silero-vad-6.2.3"
REF_PINS = ["torch==2.13.0", "silero-vad==6.2.3", "numpy", "onnxruntime"]

SILERO = r"""
import json, statistics, sys, time, wave
import numpy as np, torch
from silero_vad import load_silero_vad, get_speech_timestamps
torch.set_num_threads(1)
with wave.open(sys.argv[1], "rb") as w:
    raw = w.readframes(w.getnframes())
audio = torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0)
model = load_silero_vad(onnx=True)
get_speech_timestamps(audio, model)
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    n = len(get_speech_timestamps(audio, model))
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"ms": statistics.median(times), "segments": n}))
"""


def bare_loop(session: ort.InferenceSession, x: npt.NDArray[np.float32]) -> int:
    """The plain streaming loop: context + window in, probability and state out."""
    buf = np.zeros((1, 576), np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(RATE, dtype=np.int64)
    speech = 0
    for i in range(0, x.size - 511, 512):
        buf[0, 64:] = x[i : i + 512]
        out, state = session.run(None, {"input": buf, "state": state, "sr": sr})
        buf[0, :64] = buf[0, 512:]
        speech += out.item() >= 0.5
    return speech


def silero_ms(x: npt.NDArray[np.float32], runs: int) -> dict[str, float] | None:
    try:
        ref_py = ensure_venv(REF_VENV, REF_PINS)
    except RefVenvError as exc:
        print(f"{REF_VENV}: {exc}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        write_wav16(wav, x, RATE)
        proc = subprocess.run(
            [str(ref_py), "-c", SILERO, str(wav), str(runs)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(f"silero-vad run failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="timed runs per variant (median)")
    args = ap.parse_args()

    clip = read_audio(COMMITTED, RATE)
    n = int(SECONDS * RATE)
    x = np.ascontiguousarray(np.tile(clip, -(-n // clip.size))[:n])
    model = resolve("silero-vad")
    det = build_detector(model.manifest, load_backend(model.path, BackendOptions(threads=1)), "")
    assert isinstance(det, SileroVad)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    session = ort.InferenceSession(str(model.path), so, providers=["CPUExecutionProvider"])

    segs = det.detect_samples(x)
    bare_loop(session, x)
    ours, bare = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        t0 = time.perf_counter()
        det.detect_samples(x)
        t1 = time.perf_counter()
        bare_loop(session, x)
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        bare.append((t2 - t1) * 1000)
    ours_ms, bare_ms = statistics.median(ours), statistics.median(bare)
    windows = n // 512
    line = (
        f"silero-vad {SECONDS} s file ({windows} windows, {len(segs)} segments), 1 thread, "
        f"median of {args.runs}: ours {ours_ms:.1f} ms vs bare ort loop {bare_ms:.1f} ms: "
        f"{ours_ms / bare_ms:.2f}x (goal <= 1.2x); "
        f"{ours_ms * 1000 / windows:.0f} us/window, {SECONDS * 1000 / ours_ms:.0f}x real time"
    )
    ref = silero_ms(x, args.runs)
    if ref is None:
        line += "; silero get_speech_timestamps: its venv could not be built or run (above)"
    else:
        line += (
            f"; silero get_speech_timestamps {ref['ms']:.1f} ms ({int(ref['segments'])} segments): "
            f"ours {ref['ms'] / ours_ms:.2f}x faster"
        )
    print(line)


if __name__ == "__main__":
    main()
