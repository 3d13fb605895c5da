"""issue 10: the pipeline's threads (capture, infer, post) crash and are noticed.

A crash in infer or post restarts that thread with its queue intact (the one item it
held is dropped and counted); a live source's capture restarts; a file source's
capture ends the stream with the error (not reopened: that would repeat events);
a thread that keeps crashing is fatal; a live source without frames is reported.
Ground truth: the face video (tests/fixtures/video.py) has the face in frames 30-89
and 150-209 of 240; BlazeFace short sees it there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.config import DetectorConfig, StreamConfig, TrackingConfig
from edge.events import Event
from edge.pipeline import StreamRunner, load_slot
from edge.sources import Frame
from edge.sources.video import VideoFileSource
from edge.supervise import ComponentHealth
from tests.fixtures.video import DEFAULT_SPANS, face_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return face_video(tmp_path_factory.mktemp("v") / "faces.avi", 240, DEFAULT_SPANS)[0]


class FileFrames:
    """The video file; ``live`` as asked; raises ``RuntimeError`` once at frame ``crash_at``."""

    def __init__(self, video: Path, *, live: bool = False, crash_at: int | None = None) -> None:
        self.inner = VideoFileSource(video)
        self.live = live
        self.reconnects = 0
        self.crash_at = crash_at

    def read(self) -> Frame | None:
        f = self.inner.read()
        if f is not None and f.index == self.crash_at:
            self.crash_at = None
            raise RuntimeError("decoder blew up")
        return f

    def close(self) -> None:
        self.inner.close()


def runner(
    video: Path, source: Any = None, stall_s: float = 5.0, **guard: Any
) -> tuple[StreamRunner, list[Event]]:
    cfg = StreamConfig(name="cam", source=str(video), detectors=["face"], stall_timeout_s=stall_s)
    slot = load_slot("face", DetectorConfig(model="blazeface-short"), 0.6, None)
    out: list[Event] = []
    src = source if source is not None else FileFrames(video)
    r = StreamRunner(cfg, [slot], TrackingConfig(min_hits=3, max_missing=5), out.extend, src,
                     **guard)  # fmt: skip
    return r, out


def finish(r: StreamRunner, timeout: float = 60) -> None:
    assert r.done.wait(timeout), "the stream did not finish"
    r.join(5)
    for s in r.slots:
        s.close()


def crash_once(fn: Callable[..., Any], index: int) -> Callable[..., Any]:
    """``fn`` raising RuntimeError the first time it sees frame ``index``."""
    state = {"armed": True}

    def wrapped(item: Any, *rest: Any) -> Any:
        frame = item if isinstance(item, Frame) else item.frame
        if state["armed"] and frame.index == index:
            state["armed"] = False
            raise RuntimeError(f"boom at frame {index}")
        return fn(item, *rest)

    return wrapped


def by_name(health: list[ComponentHealth]) -> dict[str, ComponentHealth]:
    return {h.name: h for h in health}


def balanced(events: list[Event]) -> dict[int, list[str]]:
    """Each track's phases, start first and end last, exactly once each."""
    tracks: dict[int, list[str]] = {}
    for e in events:
        assert e.track_id is not None
        tracks.setdefault(e.track_id, []).append(e.phase)
    for phases in tracks.values():
        assert phases[0] == "start" and phases[-1] == "end", phases
        assert phases.count("start") == 1 and phases.count("end") == 1, phases
    return tracks


def test_post_crash_restarts_and_keeps_the_tracks(video: Path) -> None:
    r, evs = runner(video)
    r.pipeline.post = crash_once(r.pipeline.post, 50)  # type: ignore[method-assign]
    r.start()
    finish(r)
    h = by_name(r.health())
    assert h["cam.post"].restarts == 1 and h["cam.post"].ok
    assert "boom at frame 50" in (h["cam.post"].reason or "")
    assert r.metrics.processed == 240 and r.metrics.skipped == 1 and r.metrics.error is None
    assert sorted(balanced(evs)) == [1, 2]  # one missed frame does not split the first face
    assert r.stats().restarts == 1


def test_infer_crash_restarts_with_the_queue_intact(video: Path) -> None:
    r, evs = runner(video)
    r.pipeline.infer = crash_once(r.pipeline.infer, 60)  # type: ignore[method-assign]
    r.start()
    finish(r)
    h = by_name(r.health())
    assert h["cam.infer"].restarts == 1 and h["cam.infer"].ok
    assert r.metrics.frames_in == 240 and r.metrics.dropped == 0
    assert r.metrics.processed == 239 and r.metrics.skipped == 1  # only the crashing frame
    assert sorted(balanced(evs)) == [1, 2]
    assert all(x.ok for x in h.values()), h


def test_a_crash_while_ending_still_ends_the_stream(video: Path) -> None:
    r, evs = runner(video)
    real = r.pipeline.finish
    calls: list[int] = []

    def finish_crashing_once(end: Any, out: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom while ending")
        real(end, out)

    r.pipeline.finish = finish_crashing_once  # type: ignore[method-assign]
    r.start()
    finish(r, 30)  # the end marker was taken by the crashed attempt: done all the same
    post = by_name(r.health())["cam.post"]
    assert post.restarts == 1 and post.ok and len(calls) == 2
    assert sorted(balanced(evs)) == [1, 2]


def test_file_capture_crash_ends_the_stream_and_its_events(video: Path) -> None:
    r, evs = runner(video, FileFrames(video, crash_at=60))
    r.start()
    finish(r)
    assert r.metrics.frames_in == 60  # frames 0-59; the file is not reopened
    assert r.metrics.error == "capture failed: RuntimeError: decoder blew up"
    stream = by_name(r.health())["cam.source"]
    assert not stream.ok and "stream ended with an error: capture failed" in (stream.reason or "")
    assert sorted(balanced(evs)) == [1]  # the face seen in 30-59 ends; nothing repeats
    assert evs[-1].phase == "end"


def test_live_capture_crash_restarts_capture(video: Path) -> None:
    r, _ = runner(video, FileFrames(video, live=True, crash_at=60))
    r.start()
    finish(r)
    h = by_name(r.health())
    assert h["cam.capture"].restarts == 1 and h["cam.capture"].ok
    assert r.metrics.frames_in == 239 and r.metrics.error is None  # all but the crashing read


def test_a_thread_that_keeps_crashing_is_fatal_and_ends_the_stream(video: Path) -> None:
    r, _ = runner(video, max_restarts=2, window_s=60.0)

    def always(frame: Frame) -> None:
        raise RuntimeError("model is broken")

    r.pipeline.infer = always  # type: ignore[method-assign]
    r.start()
    finish(r, 20)
    infer = by_name(r.health())["cam.infer"]
    assert infer.fatal and not infer.ok and infer.restarts == 2
    assert "model is broken" in (infer.reason or "")
    assert r.metrics.error is not None and "failed for good" in r.metrics.error
    assert r.stop_event.is_set()  # capture stops too: nothing would process its frames
    assert r.metrics.frames_in < 240


class Silent:
    """A live source that never produces a frame (a camera that hangs)."""

    live = True
    reconnects = 0

    def __init__(self) -> None:
        self.closed = threading.Event()

    def read(self) -> Frame | None:
        while not self.closed.wait(0.05):
            pass
        return None

    def close(self) -> None:
        self.closed.set()


def test_a_live_source_without_frames_is_reported(video: Path) -> None:
    src = Silent()
    r, _ = runner(video, src, stall_s=0.3)
    r.start()
    try:
        assert by_name(r.health())["cam.source"].ok  # not yet: give it stall_timeout_s
        time.sleep(0.6)
        stream = by_name(r.health())["cam.source"]
        assert not stream.ok and not stream.fatal
        assert stream.reason is not None and stream.reason.startswith("no frame from the video")
    finally:
        r.stop()
        src.close()
        finish(r, 10)


def _file_daemon(tmp_path: Path, video: Path) -> Any:
    from edge.config import load_config
    from edge.daemon import Daemon
    from tests.support.edge_run import device_toml

    path = tmp_path / "edge.toml"
    sink = f'[[sinks]]\ntype = "jsonl"\npath = "{tmp_path / "events.jsonl"}"\n'
    path.write_text(device_toml(tmp_path / "data", video, health_port=None, sinks=sink,
                                device_id="crash-dev", loop=False))  # fmt: skip
    return Daemon(path, load_config(path))


@pytest.mark.parametrize("part", ["infer", "post"])
def test_a_file_run_that_crashed_on_the_way_exits_1_not_0(
    tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    """The thread was restarted and the file ran to its end, but the frame it held is gone
    with whatever events it had: the run is incomplete, and says so in its exit code."""
    from edge.pipeline.vision import VisionPipeline
    from edge.supervisor import IncompleteRunError

    original = getattr(VisionPipeline, part)
    armed = [True]

    def crashing(self: VisionPipeline, item: Any, *rest: Any) -> Any:
        frame = item if isinstance(item, Frame) else item.frame
        if armed[0] and frame.index == 40:
            armed[0] = False
            raise RuntimeError("boom at frame 40")
        return original(self, item, *rest)

    monkeypatch.setattr(VisionPipeline, part, crashing)
    d = _file_daemon(tmp_path, video)
    with pytest.raises(IncompleteRunError) as got:
        d.run()
    assert got.value.exit_code == 1
    assert f"cam.{part} 1 time(s)" in str(got.value), got.value
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) >= 4  # the rest of the run was delivered: both faces, start and end


def test_a_file_run_without_a_crash_exits_0(tmp_path: Path, video: Path) -> None:
    assert _file_daemon(tmp_path, video).run() == 0
