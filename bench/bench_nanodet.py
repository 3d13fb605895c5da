"""nanodet-m through ``StreamRunner`` on the demo's 640×480 MJPG video, against its bound.

    .venv/bin/python bench/bench_nanodet.py [--frames 150] [--runs 5]

The video is the demo's own (edge/demo/media.py: a person, then a cat, walking across
scikit-image's coffee cup, with the two faces), so the decoder, the tracker and the
zone/line logic see real detections. Prints, medians over runs in the same process
(pipeline and bare loop alternate run by run, so both see the same machine load):
- decode ms per frame (cv2.VideoCapture alone);
- pre + invoke + post ms per frame (``detect()`` in a plain loop over decoded frames);
- the bound 1 / max(decode, pre + invoke + post) and the pipeline's frames/s against it,
  from the median interval between frames finished in its inference thread (medians on
  both sides, so a shared machine's stalls weigh on neither);
- whole-run throughput (frames / wall time) of the pipeline and of the bare loop, which
  every stall does weigh on.
Threads: the model at 1 thread (decode and inference overlap on the second core).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig, LineConfig, StreamConfig, TrackingConfig, ZoneConfig  # noqa: E402
from edge.demo.media import DOOR, WALKWAY, build_video  # noqa: E402
from edge.detectors import load_detector  # noqa: E402
from edge.detectors.base import Detection  # noqa: E402
from edge.detectors.gfl import GflDetector  # noqa: E402
from edge.pipeline import StreamRunner, load_slot  # noqa: E402

MODEL = "nanodet-m"
DETECTOR = DetectorConfig(model=MODEL, threads=1, threshold=0.3, labels=["person", "cat", "dog"])


def clip(src: Path, dst: Path, frames: int) -> tuple[Path, list[npt.NDArray[np.uint8]]]:
    """The first ``frames`` frames of ``src`` as their own MJPG file, and decoded."""
    cap = cv2.VideoCapture(str(src))
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (640, 480))
    decoded = []
    while len(decoded) < frames:
        ok, f = cap.read()
        if not ok:
            break
        out.write(f)
        decoded.append(np.asarray(f, np.uint8))
    out.release()
    cap.release()
    return dst, decoded


def decode_ms(video: Path) -> float:
    cap = cv2.VideoCapture(str(video))
    t0 = time.perf_counter()
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return (time.perf_counter() - t0) * 1000 / n


def bare(det: GflDetector, frames: list[npt.NDArray[np.uint8]]) -> dict[str, float]:
    stages: dict[str, list[float]] = {"pre": [], "invoke": [], "post": []}
    for f in frames:
        det.detect(f)
        for k in stages:
            stages[k].append(det.times.ms[k])
    return {k: statistics.median(v) for k, v in stages.items()}


def pipeline_fps(video: Path) -> tuple[float, float, int]:
    """(frames/s from the median interval between frames done in the infer thread, frames/s
    over the whole run from start(), events)."""
    cfg = StreamConfig(
        name="bench", source=str(video), detectors=["objects"],
        zones=[ZoneConfig(name="walkway", points=list(WALKWAY))],
        lines=[LineConfig(name="door", start=DOOR[0], end=DOOR[1])],
    )  # fmt: skip
    slot = load_slot("objects", DETECTOR, None, None)
    det = slot.detector
    assert isinstance(det, GflDetector)
    done: list[float] = []
    inner = det.detect

    def detect(image: npt.NDArray[np.uint8]) -> list[Detection]:
        found = inner(image)
        done.append(time.perf_counter())
        return found

    det.detect = detect  # type: ignore[method-assign]  # timestamps, nothing else
    events: list[object] = []
    r = StreamRunner(cfg, [slot], TrackingConfig(), events.extend)
    t0 = time.perf_counter()
    r.start()
    r.done.wait(300)
    t1 = time.perf_counter()
    r.join(5)
    slot.close()
    period = statistics.median(b - a for a, b in itertools.pairwise(done[5:]))
    return 1.0 / period, r.metrics.processed / (t1 - t0), len(events)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=150, help="frames of the demo video")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        video, frames = clip(build_video(tmp / "demo.avi"), tmp / "clip.avi", args.frames)
        _, det = load_detector(MODEL, threads=1)
        assert isinstance(det, GflDetector)
        for f in frames[:10]:
            det.detect(f)  # warm-up
        decs, stages, fpss, colds, bares = [], [], [], [], []
        n_events = 0
        for _ in range(args.runs):
            decs.append(decode_ms(video))
            t0 = time.perf_counter()
            stages.append(bare(det, frames))
            bares.append(len(frames) / (time.perf_counter() - t0))
            fps, cold, n_events = pipeline_fps(video)
            fpss.append(fps)
            colds.append(cold)
        det.close()
    dec = statistics.median(decs)
    st = {k: statistics.median(s[k] for s in stages) for k in ("pre", "invoke", "post")}
    model_ms = sum(st.values())
    bound = 1000 / max(dec, model_ms)
    fps = statistics.median(fpss)
    print(f"cores: {os.cpu_count()}, {len(frames)} frames 640x480 MJPG (the demo video), "
          f"{args.runs} runs (medians), model at 1 thread")  # fmt: skip
    print(f"decode {dec:.2f} ms; pre {st['pre']:.2f} + invoke {st['invoke']:.2f} "
          f"+ post {st['post']:.2f} = {model_ms:.2f} ms")  # fmt: skip
    print(f"bound 1/max(decode, pre+invoke+post): {bound:.1f} frames/s")
    print(f"pipeline (StreamRunner, tracker, zone + line; median frame interval): {fps:.1f} "
          f"frames/s = {fps / bound:.2f}x bound (goal >= 0.95); {n_events} events")  # fmt: skip
    print("  per run (frames/s): " + ", ".join(f"{f:.1f}" for f in fpss))
    cold, loop = statistics.median(colds), statistics.median(bares)
    print(f"whole runs, frames / wall time (every stall of a shared machine counted): pipeline "
          f"{cold:.1f} frames/s vs the bare detect() loop (no decode) {loop:.1f} frames/s: "
          f"{cold / loop:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
