"""Pipeline efficiency: BlazeFace short through ``StreamRunner`` on a 640×480 MJPG video.

Prints, over rounds on the same frames in the same process (each round measures every
figure once, back to back, so a noisy stretch of the machine hits them alike; the ratios
are the medians of each round's ratio):
- frames processed/s of the pipeline vs the bound 1 / max(decode, pre + invoke + post),
  each stage its mean per frame over the run (throughput is set by the mean: a frame with a
  face costs ~10x a frame without in ``post``, so the median of ``post`` would put the bound
  above what even the bare loop reaches);
- the same pipeline with its threads pinned (``[streams.cpus]``: inference on CPU 0,
  decoding and tracking on CPU 1), where the machine has two CPUs or more;
- the lean two-thread loop: OpenCV decode in one thread, ``detect`` in the other, nothing
  else (no tracking, no events, no health): what any Python pipeline can reach here;
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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Queue

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig, StreamConfig, TrackingConfig  # noqa: E402
from edge.config.streams import StreamCpus  # noqa: E402
from edge.detectors import load_detector  # noqa: E402
from edge.pipeline import StreamRunner, load_slot  # noqa: E402
from edge.pipeline.affinity import allowed_cpus  # noqa: E402
from tests.fixtures.video import DEFAULT_SPANS, face_video  # noqa: E402

N_FRAMES, RUNS = 300, 7
CV_THREADS = cv2.getNumThreads()  # OpenCV's default, before any pipeline changes it
MP_VENV = Path.home() / ".cache" / "edgewise" / "venvs" / "mediapipe-0.10.21"


def frames_of(video: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """The video's frames as OpenCV decodes them."""
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, f = cap.read()
        if not ok:
            return
        yield np.asarray(f, np.uint8)


def decode_ms(video: Path) -> float:
    cap = cv2.VideoCapture(str(video))
    t0 = time.perf_counter()
    n = 0
    while cap.read()[0]:
        n += 1
    return (time.perf_counter() - t0) * 1000 / n


def bare_ms(video: Path) -> tuple[float, dict[str, float]]:
    """The model in a plain loop, at its best: OpenCV's thread pool as it comes (a pipeline
    run in this process before turns it off: ``edge.pipeline.stream.single_threaded_opencv``)."""
    cv2.setNumThreads(CV_THREADS)
    frames = list(frames_of(video))
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


def lean_fps(video: Path) -> float:
    """Decode in one thread, ``detect`` in this one, a bounded queue between: nothing else
    (OpenCV's thread pool as it comes, as a plain script would have it)."""
    cv2.setNumThreads(CV_THREADS)
    _, det = load_detector("blazeface-short", threads=1)
    q: Queue[npt.NDArray[np.uint8] | None] = Queue(maxsize=8)

    def capture() -> None:
        for f in frames_of(video):
            q.put(f)
        q.put(None)

    t = threading.Thread(target=capture)
    t0 = time.perf_counter()
    t.start()
    n = 0
    while (f := q.get()) is not None:
        det.detect(f)  # type: ignore[union-attr]  # an image detector
        n += 1
    dt = time.perf_counter() - t0
    t.join()
    det.close()
    return n / dt


PINNED = StreamCpus(infer=[0], capture=[1], post=[1])


def pipeline_fps(video: Path, cpus: StreamCpus | None = None) -> float:
    cfg = StreamConfig(name="b", source=str(video), detectors=["face"], cpus=cpus)
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
        [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
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
        pin = (allowed_cpus() or set()) >= {0, 1}
        rounds = []
        for _ in range(RUNS):
            dec = decode_ms(video)
            bare, stages = bare_ms(video)
            model_ms = sum(stages.values())
            bound = 1000 / max(dec, model_ms)
            fps, lean = pipeline_fps(video), lean_fps(video)
            pinned = pipeline_fps(video, PINNED) if pin else float("nan")
            rounds.append({"decode": dec, "bare": bare, **stages, "model": model_ms,
                           "bound": bound, "fps": fps, "lean": lean, "pinned": pinned,
                           "fps/bound": fps / bound, "pinned/bound": pinned / bound,
                           "lean/bound": lean / bound, "fps/lean": fps / lean})  # fmt: skip
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        print(f"cores: {os.cpu_count()}, frames: {N_FRAMES} 640x480 MJPG, rounds: {RUNS} (medians)")
        print(f"decode {med['decode']:.3f} ms; pre {med['pre']:.3f} + invoke {med['invoke']:.3f} "
              f"+ post {med['post']:.3f} = {med['model']:.3f} ms")  # fmt: skip
        print(f"bound 1/max(decode, pre+invoke+post): {med['bound']:.0f} frames/s")
        print(
            f"pipeline (StreamRunner): {med['fps']:.0f} frames/s = {med['fps/bound']:.2f}x bound "
            "(goal >= 0.95)"
        )
        if pin:
            print(
                f"pipeline, threads pinned (infer CPU 0, capture + post CPU 1): "
                f"{med['pinned']:.0f} frames/s = {med['pinned/bound']:.2f}x bound (goal >= 0.95)"
            )
        else:
            print("pipeline, threads pinned: not run (this process may not use CPUs 0 and 1)")
        print(
            f"lean two-thread loop (decode thread + detect, nothing else): {med['lean']:.0f} "
            f"frames/s = {med['lean/bound']:.2f}x bound; pipeline = {med['fps/lean']:.2f}x lean"
        )
        fps, bare = med["fps"], med["bare"]
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
