"""Write tests/fixtures/okay_nabu_16k.wav and tests/fixtures/kws_reference.json.

Run with the project venv: ``.venv/bin/python scripts/make_kws_reference.py``.

1. Synthesises every clip of tests/fixtures/kws_clips.py twice with espeak-ng
   and refuses to go on unless both renders are identical; commits the
   "okay nabu" clip as a WAV so the comparison test does not depend on the
   local espeak-ng version.
2. In a throwaway venv (/tmp/mww-ref-venv: pymicro-wakeword 2.5.0 +
   pymicro-features 2.0.2) runs pymicro-wakeword's own MicroWakeWordFeatures +
   MicroWakeWord (its bundled libtensorflowlite_c) on each clip with each zoo
   model, and records every model output and whether ``process_streaming``
   fired.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.kws_clips import (  # noqa: E402  (needs the repo on sys.path)
    CLIPS,
    COMMITTED,
    REFERENCE,
    espeak_version,
    speech_span,
    synthesise,
    write_wav16,
)

REF_VENV = Path("/tmp/mww-ref-venv")
PINS = ["pymicro-wakeword==2.5.0", "pymicro-features==2.0.2"]
MODELS = {"okay-nabu": "okay_nabu", "alexa": "alexa", "hey-mycroft": "hey_mycroft"}

# Runs inside REF_VENV: argv = model key, wav paths; prints JSON.
REF_CODE = """
import json, sys, wave
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
mww = MicroWakeWord.from_builtin(Model(sys.argv[1]))
out = {"stride": mww.stride, "cutoff": mww.probability_cutoff,
       "window": mww.sliding_window_size, "clips": {}}
for path in sys.argv[2:]:
    mww.reset()
    feats = MicroWakeWordFeatures()
    with wave.open(path, "rb") as w:
        audio = w.readframes(w.getnframes())
    probs, fired, n_feat = [], [], 0
    for f in feats.process_streaming(audio):
        n_feat += 1
        before = len(mww._features)
        hit = mww.process_streaming(f)
        if before + 1 == mww.stride:  # this feature completed a model call
            probs.append(mww._probabilities[-1])
            if hit:
                fired.append(len(probs) - 1)
    out["clips"][path] = {"features": n_feat, "probabilities": probs, "fired_steps": fired}
print(json.dumps(out))
"""


def ensure_venv() -> Path:
    py = REF_VENV / "bin" / "python"
    if not py.exists():
        venv.create(REF_VENV, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    return py


def main() -> None:
    renders = {c.key: synthesise(c) for c in CLIPS}
    for c in CLIPS:
        if synthesise(c).tobytes() != renders[c.key].tobytes():
            sys.exit(f"espeak-ng rendered {c.key!r} differently twice; cannot pin a reference")
    write_wav16(COMMITTED, renders["okay_nabu"])
    py = ensure_venv()
    result: dict[str, Any] = {
        "generator": "scripts/make_kws_reference.py",
        "reference": " + ".join(PINS),
        "espeak_ng": espeak_version(),
        "clips": {},
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for c in CLIPS:
            paths[c.key] = Path(tmp) / f"{c.key}.wav"
            write_wav16(paths[c.key], renders[c.key])
            start, end = speech_span(renders[c.key])
            result["clips"][c.key] = {
                "text": c.text,
                "voice": c.voice,
                "speed": c.speed,
                "model": c.model,
                "pcm_sha256": hashlib.sha256(renders[c.key].tobytes()).hexdigest(),
                "samples": int(renders[c.key].size),
                "speech": [round(start, 4), round(end, 4)],
            }
        for zoo_name, key in MODELS.items():
            args = [str(paths[c.key]) for c in CLIPS]
            proc = subprocess.run(
                [str(py), "-c", REF_CODE, key, *args], check=True, capture_output=True, text=True
            )
            ref = json.loads(proc.stdout)
            by_path = ref.pop("clips")
            ref["clips"] = {c.key: by_path[str(paths[c.key])] for c in CLIPS}
            result["models"][zoo_name] = ref
    REFERENCE.write_text(json.dumps(result, indent=1) + "\n")
    for zoo_name, ref in result["models"].items():
        for key, r in ref["clips"].items():
            top = max(r["probabilities"])
            print(f"{zoo_name:12s} {key:12s} max {top:.3f} fired {r['fired_steps'][:3]}")


if __name__ == "__main__":
    main()
