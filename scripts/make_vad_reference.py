"""Write tests/fixtures/speech_16k.wav and tests/fixtures/vad_reference.json.

Run with the project venv: ``.venv/bin/python scripts/make_vad_reference.py``.

1. Synthesises the test clip twice with tests/fixtures/speech.py (espeak-ng +
   seeded noise) and refuses to go on unless both renders hash the same.
2. Commits the clip as a 16-bit WAV (the tests read this file, so they do not
   depend on the local espeak-ng version) and its speech spans.
3. In a throwaway venv (/tmp/silero-ref-venv: torch 2.13.0 CPU + silero-vad
   6.2.3) runs silero-vad's own ``load_silero_vad(onnx=True)`` +
   ``get_speech_timestamps`` on that WAV, and ``get_speech_timestamps_from_probs``
   on seeded probability sequences under several parameter sets.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.speech import (  # noqa: E402  (needs the repo on sys.path)
    COMMITTED,
    RATE,
    REFERENCE,
    _synthesise,
    espeak_version,
    sha256_of,
    write_wav16,
)

REF_VENV = Path("/tmp/silero-ref-venv")
PINS = ["torch==2.13.0", "silero-vad==6.2.3", "numpy", "onnxruntime"]
FILE_PARAMS = {"threshold": 0.5, "min_speech_ms": 250, "min_silence_ms": 100, "speech_pad_ms": 30}
PROB_CASES: list[dict[str, Any]] = [
    {},
    {"speech_pad_ms": 100, "min_silence_ms": 50},
    {"max_speech_s": 2.0},
    {"max_speech_s": 1.0, "min_speech_ms": 0, "threshold": 0.6, "neg_threshold": 0.3},
    {"threshold": 0.4, "min_silence_ms": 300, "speech_pad_ms": 0},
]

INNER = r"""
import json, sys, wave
import numpy as np, torch, onnxruntime
from importlib.metadata import version
from silero_vad import load_silero_vad, get_speech_timestamps
from silero_vad.utils_vad import get_speech_timestamps_from_probs

job = json.load(sys.stdin)
with wave.open(job["wav"], "rb") as w:
    raw = w.readframes(w.getnframes())
audio = torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0)
p = job["file_params"]
model = load_silero_vad(onnx=True)
ts = get_speech_timestamps(audio, model, threshold=p["threshold"], sampling_rate=16000,
    min_speech_duration_ms=p["min_speech_ms"], min_silence_duration_ms=p["min_silence_ms"],
    speech_pad_ms=p["speech_pad_ms"])
cases = []
for case in job["cases"]:
    q = case["params"]
    segs = get_speech_timestamps_from_probs(case["probs"], sampling_rate=16000,
        threshold=q.get("threshold", 0.5), neg_threshold=q.get("neg_threshold"),
        min_speech_duration_ms=q.get("min_speech_ms", 250),
        min_silence_duration_ms=q.get("min_silence_ms", 100),
        speech_pad_ms=q.get("speech_pad_ms", 30),
        max_speech_duration_s=q.get("max_speech_s") or float("inf"),
        audio_length_samples=case["length"])
    cases.append([[int(s["start"]), int(s["end"])] for s in segs])
print(json.dumps({
    "segments": [[int(s["start"]), int(s["end"])] for s in ts],
    "cases": cases,
    "versions": {k: version(k) for k in ("silero-vad", "torch", "onnxruntime", "numpy")},
}))
"""


def ensure_venv() -> Path:
    py = REF_VENV / "bin" / "python"
    if not py.exists():
        venv.create(REF_VENV, with_pip=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--find-links", "/opt/wheels", *PINS]
    subprocess.run(pip, check=True)
    return py


def prob_sequence(rng: np.random.Generator, frames: int) -> list[float]:
    """Alternating speech / silence runs with dips and spikes, rounded to 4 places."""
    out: list[float] = []
    speech = bool(rng.integers(2))
    while len(out) < frames:
        run = int(rng.integers(1, 60))
        lo, hi = (0.55, 1.0) if speech else (0.0, 0.45)
        vals = rng.uniform(lo, hi, run)
        flips = rng.random(run) < 0.1
        vals[flips] = rng.uniform(0.2, 0.6, int(flips.sum()))
        out.extend(round(float(v), 4) for v in vals)
        speech = not speech
    return out[:frames]


def main() -> None:
    first, second = _synthesise(), _synthesise()
    h1 = hashlib.sha256(first.samples.tobytes()).hexdigest()
    h2 = hashlib.sha256(second.samples.tobytes()).hexdigest()
    if h1 != h2 or first.spans != second.spans:
        sys.exit("espeak-ng renders differ between two runs; the clip is not reproducible")
    write_wav16(COMMITTED, first.samples, RATE)
    rng = np.random.default_rng(7)
    cases = []
    for params in PROB_CASES:
        frames = int(rng.integers(400, 700))
        length = frames * 512 - int(rng.integers(0, 512))
        cases.append({"params": params, "probs": prob_sequence(rng, frames), "length": length})
    job = {"wav": str(COMMITTED), "file_params": FILE_PARAMS, "cases": cases}
    py = ensure_venv()
    proc = subprocess.run(
        [str(py), "-c", INNER], input=json.dumps(job), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"reference run failed:\n{proc.stderr}")
    ref = json.loads(proc.stdout)
    for case, segs in zip(cases, ref["cases"], strict=True):
        case["segments"] = segs
    out = {
        "wav": COMMITTED.name,
        "wav_sha256": sha256_of(COMMITTED),
        "sample_rate": RATE,
        "speech_spans": [list(s) for s in first.spans],
        "espeak_ng": espeak_version(),
        "versions": ref["versions"],
        "params": FILE_PARAMS,
        "segments": ref["segments"],
        "prob_cases": cases,
    }
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {COMMITTED} ({COMMITTED.stat().st_size} bytes) and {REFERENCE}")
    print(f"silero-vad segments (samples): {ref['segments']}")


if __name__ == "__main__":
    main()
