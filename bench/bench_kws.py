"""microWakeWord okay-nabu: our streaming detector vs a bare frontend + LiteRT loop
vs pymicro-wakeword itself.

    .venv/bin/python bench/bench_kws.py [--runs 21]

The committed "okay nabu" clip (tests/fixtures/okay_nabu_16k.wav), padded to a
whole number of model steps and repeated to 30 s (1000 model steps of 3
features). One thread. Ours is ``reset`` + ``feed`` over the whole stream
(frontend, quantization, invoke, sliding-window decision). The baseline is the
tightest plain loop over the same audio: pymicro-features on 160-sample hops,
quantize, ``set_tensor`` / ``invoke`` / ``get_tensor`` on a LiteRT interpreter
(XNNPACK, the default). pymicro-wakeword's own MicroWakeWordFeatures +
MicroWakeWord (its bundled libtensorflowlite_c) is timed in /tmp/mww-ref-venv
(made by scripts/make_kws_reference.py) when it exists; only the loop is timed.
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
from ai_edge_litert import interpreter as litert
from pymicro_features import MicroFrontend  # type: ignore[import-untyped]  # no py.typed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.detectors import build_detector  # noqa: E402
from edge.detectors.kws import MicroWakeWord, to_pcm16  # noqa: E402
from edge.media.audio import read_audio  # noqa: E402
from edge.models.resolve import resolve  # noqa: E402
from edge.runtime import BackendOptions, load_backend  # noqa: E402
from tests.fixtures.kws_clips import COMMITTED, RATE, write_wav16  # noqa: E402
from tests.support.ref_venv import RefVenvError, ensure_venv  # noqa: E402

SECONDS = 30.0
# the peer runs in its own pinned venv, built on first use (tests/support/ref_venv.py)
REF_VENV = "bench-pymicro-wakeword-2.5.0"
REF_PINS = ["pymicro-wakeword==2.5.0", "pymicro-features==2.0.2"]

PYMICRO = r"""
import json, statistics, sys, time, wave
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
mww = MicroWakeWord.from_builtin(Model.OKAY_NABU)
with wave.open(sys.argv[1], "rb") as w:
    audio = w.readframes(w.getnframes())
times = []
for _ in range(int(sys.argv[2])):
    mww.reset()
    feats = MicroWakeWordFeatures()
    t0 = time.perf_counter()
    hits = sum(bool(mww.process_streaming(f)) for f in feats.process_streaming(audio))
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"ms": statistics.median(times), "hits": hits}))
"""


class BareLoop:
    def __init__(self, path: Path) -> None:
        self.interp = litert.Interpreter(model_path=str(path), num_threads=1)
        self.interp.allocate_tensors()
        inp, out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.i_in, self.i_out = inp["index"], out["index"]
        self.scale, self.zero = inp["quantization"]
        self.frontend = MicroFrontend()

    def features(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
        self.frontend.reset()
        process, out, i = self.frontend.process_samples, [], 0
        while i + 160 <= pcm.size:
            r = process(pcm[i : i + 160].tobytes())
            i += r.samples_read
            if r.features:
                out.append(r.features)
        return np.asarray(out, dtype=np.float64)

    def quantize(self, feats: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
        n = feats.shape[0] // 3 * 3
        q = np.clip(np.rint(feats[:n] / self.scale + self.zero), -128, 127).astype(np.int8)
        blocks: npt.NDArray[np.int8] = q.reshape(-1, 1, 3, feats.shape[1])
        return blocks

    def invoke_all(self, blocks: npt.NDArray[np.int8]) -> float:
        interp, total = self.interp, 0.0
        for b in blocks:
            interp.set_tensor(self.i_in, b)
            interp.invoke()
            total += float(interp.get_tensor(self.i_out)[0, 0])
        return total

    def run(self, pcm: npt.NDArray[np.int16]) -> float:
        return self.invoke_all(self.quantize(self.features(pcm)))


def pymicro_ms(x: npt.NDArray[np.float32], runs: int) -> dict[str, float] | None:
    try:
        ref_py = ensure_venv(REF_VENV, REF_PINS)
    except RefVenvError as exc:
        print(f"{REF_VENV}: {exc}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        write_wav16(wav, to_pcm16(x))
        proc = subprocess.run(
            [str(ref_py), "-c", PYMICRO, str(wav), str(runs)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(f"pymicro-wakeword run failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def median_ms(fn: object, runs: int) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="timed runs per variant (median)")
    args = ap.parse_args()

    clip = read_audio(COMMITTED, RATE)
    clip = np.pad(clip, (0, -clip.size % 480))
    n = int(SECONDS * RATE)
    x = np.ascontiguousarray(np.tile(clip, -(-n // clip.size))[:n])
    pcm = to_pcm16(x)
    model = resolve("okay-nabu")
    det = build_detector(model.manifest, load_backend(model.path, BackendOptions(threads=1)), "")
    assert isinstance(det, MicroWakeWord)
    bare = BareLoop(model.path)
    blocks = bare.quantize(bare.features(pcm))
    steps = blocks.shape[0]

    det.reset()
    hits = len(det.feed(x))
    ours, base = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        t0 = time.perf_counter()
        det.reset()
        det.feed(x)
        t1 = time.perf_counter()
        bare.run(pcm)
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        base.append((t2 - t1) * 1000)
    ours_ms, bare_ms = statistics.median(ours), statistics.median(base)
    feat_ms = median_ms(lambda: bare.features(pcm), args.runs)
    invoke_ms = median_ms(lambda: bare.invoke_all(blocks), args.runs)
    print(
        f"okay-nabu {SECONDS:.0f} s stream ({steps} model steps, {hits} detections), 1 thread, "
        f"median of {args.runs}: ours {ours_ms:.1f} ms vs bare frontend+LiteRT loop "
        f"{bare_ms:.1f} ms: {ours_ms / bare_ms:.2f}x (goal <= 1.2x); "
        f"{SECONDS * 1000 / ours_ms:.0f}x real time"
    )
    print(
        f"  parts of the bare loop: frontend {feat_ms:.1f} ms "
        f"({feat_ms * 1000 / steps:.1f} us/step), "
        f"invoke {invoke_ms:.1f} ms ({invoke_ms * 1000 / steps:.1f} us/step = "
        f"{invoke_ms / steps:.4f} ms per invoke)"
    )
    ref = pymicro_ms(x, args.runs)
    if ref is None:
        print("  pymicro-wakeword: its venv could not be built or run (the error is above)")
    else:
        print(
            f"  pymicro-wakeword 2.5.0 own loop {ref['ms']:.1f} ms "
            f"({int(ref['hits'])} firing steps): "
            f"ours {ref['ms'] / ours_ms:.2f}x faster"
        )


if __name__ == "__main__":
    main()
