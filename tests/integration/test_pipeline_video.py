"""The pipeline on a 640×480 video built from real photos, with BlazeFace short.

Ground truth (tests/fixtures/video.py): 240 frames at 30 frames/s; the astronaut's
face is in frames 30–89 (top right) and 150–209 (centre); `coffee` elsewhere.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.config import DetectorConfig, MotionGateConfig, StreamConfig, TrackingConfig
from edge.events import Event
from edge.pipeline import StreamRunner, load_slot
from edge.sources import Frame
from edge.sources.video import VideoFileSource
from tests.fixtures.video import DEFAULT_SPANS, FPS, PATCH, face_video

pytestmark = pytest.mark.slow
TOL = 3  # frames


def run(
    video: Path, source: object | None = None, gate: MotionGateConfig | None = None
) -> tuple[StreamRunner, list[Event]]:
    cfg = StreamConfig(name="cam", source=str(video), detectors=["face"], motion_gate=gate)
    slot = load_slot("face", DetectorConfig(model="blazeface-short"), 0.6, None)
    out: list[Event] = []
    r = StreamRunner(cfg, [slot], TrackingConfig(min_hits=3, max_missing=5), out.extend, source)  # type: ignore[arg-type]
    r.start()
    assert r.done.wait(60)
    r.join(5)
    return r, out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return face_video(tmp_path_factory.mktemp("v") / "faces.avi", 240, DEFAULT_SPANS)[0]


def test_face_events_match_the_truth(video: Path) -> None:
    r, evs = run(video)
    assert r.metrics.frames_in == r.metrics.processed == 240 and r.metrics.dropped == 0
    t0: float = r.source.t0  # type: ignore[attr-defined]  # a VideoFileSource

    def frame(ts: float) -> int:
        return round((ts - t0) * FPS)

    tracks = sorted({e.track_id for e in evs if e.track_id is not None})
    assert len(tracks) == len(DEFAULT_SPANS)  # one id per face
    for tid, span in zip(tracks, DEFAULT_SPANS, strict=True):
        mine = [e for e in evs if e.track_id == tid]
        start = next(e for e in mine if e.phase == "start")
        end = next(e for e in mine if e.phase == "end")
        assert abs(frame(start.started_at) - span.first) <= TOL
        assert abs(frame(start.ts) - (span.first + 2)) <= TOL  # confirmed on the 3rd frame
        assert abs(frame(end.ts) - span.last) <= TOL
        assert [e.phase for e in mine].count("end") == 1
        # the box lies where the patch was pasted (normalized)
        assert start.box is not None
        cx, cy = (start.box[0] + start.box[2]) / 2 * 640, (start.box[1] + start.box[3]) / 2 * 480
        assert span.x < cx < span.x + PATCH and span.y < cy < span.y + PATCH
        assert (
            start.kind == "vision"
            and start.label == "face"
            and start.model.name == "blazeface-short"
        )


def test_motion_gate_skips_static_frames_and_keeps_the_events(video: Path) -> None:
    r, evs = run(video, gate=MotionGateConfig(threshold=2.0, max_skip_s=10.0))
    # the scene changes only at frames 30, 90, 150, 210: every other frame is static
    assert r.metrics.gated >= 200
    assert r.metrics.processed + r.metrics.gated == 240
    assert sorted({e.track_id for e in evs if e.track_id is not None}) == [1, 2]
    assert [e.phase for e in evs].count("end") == 2


class OddFrames:
    """The video's frames, with frame 40 grey, 41 BGRA, 42 two-channel, 43 half size."""

    live = False
    reconnects = 0

    def __init__(self, video: Path) -> None:
        self.inner = VideoFileSource(video)
        self.t0 = self.inner.t0

    def read(self) -> Frame | None:
        f = self.inner.read()
        if f is None or f.image is None:
            return f
        img = f.image
        if f.index == 40:
            f.image = np.ascontiguousarray(img[:, :, 1])
        elif f.index == 41:
            f.image = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
        elif f.index == 42:
            f.image = np.ascontiguousarray(img[:, :, :2])
        elif f.index == 43:
            f.image = np.ascontiguousarray(img[::2, ::2])
        return f

    def close(self) -> None:
        self.inner.close()


def test_frames_of_unexpected_shape_mid_stream_do_not_crash(video: Path) -> None:
    r, evs = run(video, source=OddFrames(video))
    m = r.metrics
    assert m.error is None
    assert m.skipped == 1  # the two-channel frame
    assert m.converted == 4  # grey, BGRA, the half-size frame, and back to full size
    assert m.processed == 239
    # the face in 30–89 is still one track with one end
    assert sorted({e.track_id for e in evs if e.track_id is not None}) == [1, 2]


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin threads (no sched_setaffinity)"
)
def test_pinned_threads_run_where_the_config_puts_them_and_find_the_same_faces(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.config.streams import StreamCpus
    from edge.pipeline import affinity

    cpus = sorted(os.sched_getaffinity(0))
    first, last = {cpus[0]}, {cpus[-1]}
    where: dict[str, set[int]] = {}
    real_pin = affinity.pin

    def pin(chosen: set[int] | None, label: str = "thread") -> bool:
        ok = real_pin(chosen, label)
        where[threading.current_thread().name] = set(os.sched_getaffinity(0))
        return ok

    monkeypatch.setattr(affinity, "pin", pin)
    cfg = StreamConfig(
        name="cam", source=str(video), detectors=["face"],
        cpus=StreamCpus(infer=sorted(first), capture=sorted(last), post=sorted(last)),
    )  # fmt: skip
    slot = load_slot("face", DetectorConfig(model="blazeface-short"), 0.6, None)
    out: list[Event] = []
    r = StreamRunner(cfg, [slot], TrackingConfig(min_hits=3, max_missing=5), out.extend)
    r.start()
    assert r.done.wait(60)
    r.join(5)
    assert r.metrics.processed == 240
    assert {n.rsplit(".", 1)[-1]: s for n, s in where.items()} == {
        "infer": first, "capture": last, "post": last,
    }  # fmt: skip
    assert set(os.sched_getaffinity(0)) == set(cpus)  # the caller's thread is left alone
    assert sorted({e.track_id for e in out if e.track_id is not None}) == [1, 2]
    assert [e.phase for e in out].count("end") == 2


def test_a_video_stream_turns_opencvs_thread_pool_off(video: Path) -> None:
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # as OpenCV starts on a 2-core machine
    try:
        r, evs = run(video)
        assert cv2.getNumThreads() == 1  # edge.pipeline.stream.single_threaded_opencv
        assert r.metrics.processed == 240 and [e.phase for e in evs].count("end") == 2
    finally:
        cv2.setNumThreads(before)


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin threads (no sched_setaffinity)"
)
def test_cpus_that_go_away_after_the_check_leave_the_stream_running_unpinned(
    video: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.config.streams import StreamCpus

    cpu = min(os.sched_getaffinity(0))

    def refuse(pid: int, cpus: object) -> None:  # a cpuset narrowed after the check
        raise OSError(22, "Invalid argument")

    cfg = StreamConfig(
        name="cam", source=str(video), detectors=["face"], cpus=StreamCpus(infer=[cpu])
    )
    slot = load_slot("face", DetectorConfig(model="blazeface-short"), 0.6, None)
    out: list[Event] = []
    r = StreamRunner(cfg, [slot], TrackingConfig(min_hits=3, max_missing=5), out.extend)
    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    r.start()
    assert r.done.wait(60)
    r.join(5)
    assert r.metrics.processed == 240 and r.healthy()
    assert [e.phase for e in out].count("end") == 2
    assert f"streams.cam.cpus.infer: cannot pin to CPU(s) {cpu} (Invalid argument)" in caplog.text
