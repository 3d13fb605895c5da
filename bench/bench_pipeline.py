"""Pipeline efficiency: BlazeFace short through ``StreamRunner`` on a 640×480 MJPG video.

Prints, medians over runs on the same frames in the same process:
- frames processed/s of the pipeline vs the bound 1 / max(decode, pre + invoke + post),
  each stage its mean per frame over the run (throughput is set by the mean: a frame with a
  face costs ~10x a frame without in ``post``, so the median of ``post`` would put the bound
  above what even the bare loop reaches); the median of those over runs;
- the bare model (pre + invoke + post in a plain loop over decoded frames);
- MediaPipe's own face detection (mediapipe==0.10.21 in its own venv, via subprocess) if it
  can be installed there; otherwise a note;
- daemon RSS with one vision and one audio detector, and the start-up time to the first event.
Threads: the detector at 1 thread (2 cores: decode and inference overlap).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig, StreamConfig, TrackingConfig  # noqa: E402
from edge.detectors import load_detector  # noqa: E402
from edge.pipeline import StreamRunner, load_slot  # noqa: E402
from tests.fixtures.video import DEFAULT_SPANS, face_video  # noqa: E402

N_FRAMES, RUNS = 300, 5
MP_VENV = Path.home() / ".cache" / "edgewise" / "venvs" / "mediapipe-0.10.21"


def decode_ms(video: Path) -> float:
    cap = cv2.VideoCapture(str(video))
    t0 = time.perf_counter()
    n = 0
    while cap.read()[0]:
        n += 1
    return (time.perf_counter() - t0) * 1000 / n


def bare_ms(video: Path) -> tuple[float, dict[str, float]]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(np.asarray(f, np.uint8))
    _, det = load_detector("blazeface-short", threads=1)
    for f in frames[:20]:
        det.detect(f)  # type: ignore[union-attr]  # an image detector
    stages: dict[str, list[float]] = {"pre": [], "invoke": [], "post": []}
    t0 = time.perf_counter()
    for f in frames:
        det.detect(f)  # type: ignore[union-attr]  # an image detector
        for k in stages:
            stages[k].append(det.times.ms[k])
    total = (time.perf_counter() - t0) * 1000 / len(frames)
    det.close()
    return total, {k: statistics.fmean(v) for k, v in stages.items()}


def pipeline_fps(video: Path) -> float:
    cfg = StreamConfig(name="b", source=str(video), detectors=["face"])
    slot = load_slot("face", DetectorConfig(model="blazeface-short", threads=1), 0.6, None)
    r = StreamRunner(cfg, [slot], TrackingConfig(), lambda events: None)
    t0 = time.perf_counter()
    r.start()
    r.done.wait(120)
    dt = time.perf_counter() - t0
    r.join(5)
    slot.close()
    return r.metrics.processed / dt


def mediapipe_fps(video: Path) -> str:
    py = MP_VENV / "bin" / "python"
    if not py.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(MP_VENV)], capture_output=True)
        r2 = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "mediapipe==0.10.21", "opencv-python-headless"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if made.returncode or r2.returncode:
            return (
                f"mediapipe: not installable here ({(r2.stderr or '').strip().splitlines()[-1:]})"
            )
    script = f"""
import time, cv2, statistics
import mediapipe as mp
cap = cv2.VideoCapture({str(video)!r}); frames = []
while True:
    ok, f = cap.read()
    if not ok: break
    frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
fd = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
for f in frames[:20]: fd.process(f)
runs = []
for _ in range({RUNS}):
    t0 = time.perf_counter()
    cap = cv2.VideoCapture({str(video)!r})
    while True:
        ok, f = cap.read()
        if not ok: break
        fd.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    runs.append(len(frames) / (time.perf_counter() - t0))
print(statistics.median(runs))
"""
    res = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=600)
    if res.returncode:
        return f"mediapipe: failed ({res.stderr.strip().splitlines()[-1:]})"
    return res.stdout.strip().splitlines()[-1]


def daemon_figures(video: Path, tmp: Path) -> tuple[float, float]:
    """(RSS MiB after 3 s, seconds from exec to the first event) with BlazeFace + Silero VAD."""
    wav = REPO / "tests" / "fixtures" / "speech_16k.wav"
    cfg = tmp / "d.toml"
    cfg.write_text(f"""device_id = "bench"
data_dir = "{tmp / "data"}"
[[streams]]
name = "cam"
source = "{video}"
detectors = ["face"]
loop = true
realtime = true
thresholds = {{ face = 0.6 }}
[[streams]]
name = "audio"
source = "{wav}"
detectors = ["vad"]
loop = true
realtime = true
[detectors.face]
model = "blazeface-short"
[detectors.vad]
model = "silero-vad"
[[sinks]]
type = "jsonl"
path = "ev.jsonl"
[health]
enabled = false
""")
    t0 = time.monotonic()
    p = subprocess.Popen(
        [sys.executable, "-m", "edge.cli.main", "run", "--config", str(cfg)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = float("nan")
    assert p.stderr is not None
    for line in p.stderr:
        if "first event" in line:
            first = time.monotonic() - t0
            break
    time.sleep(3)
    status = Path(f"/proc/{p.pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    p.terminate()
    p.wait(10)
    return rss, first


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        spans = [s for s in DEFAULT_SPANS]
        video = face_video(tmp / "v.avi", N_FRAMES, spans)[0]
        dec = statistics.median(decode_ms(video) for _ in range(RUNS))
        bares = [bare_ms(video) for _ in range(RUNS)]
        bare = statistics.median(b[0] for b in bares)
        stages = {k: statistics.median(b[1][k] for b in bares) for k in ("pre", "invoke", "post")}
        model_ms = sum(stages.values())
        bound = 1000 / max(dec, model_ms)
        fps = statistics.median(pipeline_fps(video) for _ in range(RUNS))
        print(f"cores: {os.cpu_count()}, frames: {N_FRAMES} 640x480 MJPG, runs: {RUNS} (medians)")
        print(f"decode {dec:.3f} ms; pre {stages['pre']:.3f} + invoke {stages['invoke']:.3f} "
              f"+ post {stages['post']:.3f} = {model_ms:.3f} ms")  # fmt: skip
        print(f"bound 1/max(decode, pre+invoke+post): {bound:.0f} frames/s")
        print(
            f"pipeline (StreamRunner): {fps:.0f} frames/s = {fps / bound:.2f}x bound (goal >= 0.95)"
        )
        print(
            f"bare model loop (no decode): {1000 / bare:.0f} frames/s; "
            f"pipeline = {fps * bare / 1000:.2f}x"
        )
        mp_out = mediapipe_fps(video)
        try:
            mp_fps = float(mp_out)
            print(f"mediapipe 0.10.21 solutions.face_detection (decode + process): {mp_fps:.0f} "
                  f"frames/s; ours = {fps / mp_fps:.2f}x")  # fmt: skip
        except ValueError:
            print(mp_out)
        rss, first = daemon_figures(video, tmp)
        print(f"daemon RSS (BlazeFace + Silero VAD, 2 streams): {rss:.0f} MiB")
        print(
            f"daemon start-up to first event: {first:.2f} s (exec to first event, incl. imports "
            "and the real-time media up to its first face or speech; bench_startup: start-up alone)"
        )


if __name__ == "__main__":
    main()
