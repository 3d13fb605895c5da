"""Sources on small synthetic files: order, completeness, clean ends, bad input, backoff."""

from __future__ import annotations

import random
import socket
import threading
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import MotionGateConfig
from edge.errors import InputError
from edge.pipeline.frames import FrameChecker, MotionGate
from edge.sources.audio import WavSource
from edge.sources.base import Backoff
from edge.sources.video import ImageFolderSource, LiveVideoSource, VideoFileSource


def numbered_video(path: Path, n: int, fps: float = 20.0) -> Path:
    """Frame i is a flat grey of level 10·i: the decoded mean tells the frame number."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        vw.write(np.full((48, 64, 3), 10 * i, np.uint8))
    vw.release()
    return path


def test_video_file_delivers_every_frame_in_order_then_ends(tmp_path: Path) -> None:
    src = VideoFileSource(numbered_video(tmp_path / "v.avi", 20))
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert [f.index for f in frames] == list(range(20))
    assert [round(float(f.image.mean()) / 10) for f in frames if f.image is not None] == list(
        range(20)
    )
    # capture time is media time from the open: 1/20 s apart
    assert np.allclose(np.diff([f.ts for f in frames]), 0.05)
    assert src.read() is None


def test_video_file_loops_when_asked(tmp_path: Path) -> None:
    src = VideoFileSource(numbered_video(tmp_path / "v.avi", 5), loop=True)
    levels = [round(float(src.read().image.mean()) / 10) for _ in range(12)]  # type: ignore[union-attr]
    assert levels == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_corrupt_and_missing_video_files_are_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(range(256)) * 40)
    with pytest.raises(InputError, match=r"bad\.avi"):
        VideoFileSource(bad)
    with pytest.raises(InputError, match="not found"):
        VideoFileSource(tmp_path / "none.avi")


def test_image_folder_skips_unreadable_files(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 50 * i, np.uint8))
    (tmp_path / "1b.png").write_bytes(b"not a png")
    src = ImageFolderSource(tmp_path)
    levels = []
    while (f := src.read()) is not None:
        levels.append(int(f.image.mean()))  # type: ignore[union-attr]
    assert levels == [0, 50, 100]
    assert src.skipped == 1


def test_wav_source_chunks_cover_every_sample(tmp_path: Path) -> None:
    x = (np.sin(np.arange(16000 * 1.3) / 7) * 12000).astype(np.int16)
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.tobytes())
    src = WavSource(tmp_path / "a.wav", 16000, 100)
    chunks = []
    while (f := src.read()) is not None:
        chunks.append(f)
    assert [c.audio.size for c in chunks] == [1600] * 13  # type: ignore[union-attr]
    assert [c.offset_s for c in chunks] == pytest.approx([i * 0.1 for i in range(13)])
    got = np.concatenate([c.audio for c in chunks])
    assert np.allclose(got, x / 32768.0, atol=1e-4)


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(0.5, 4.0, random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jitter
    b.reset()
    assert b.next_delay() <= 0.5


def test_live_source_retries_an_unreachable_url_and_stops_promptly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    stop = threading.Event()
    src = LiveVideoSource(
        f"http://127.0.0.1:{port}/x.mjpg", stop, stall_timeout_s=1, backoff=Backoff(0.05, 0.1)
    )
    threading.Timer(0.8, stop.set).start()
    t0 = time.monotonic()
    assert src.read() is None
    assert time.monotonic() - t0 < 2.5
    assert src.failures >= 3 and src.reconnects == 0


def test_frame_checker_converts_grey_and_bgra_and_skips_the_rest() -> None:
    c = FrameChecker("s")
    assert c.check(np.zeros((48, 64, 3), np.uint8), 0) is not None
    assert c.check(np.zeros((48, 64), np.uint8), 1).shape == (48, 64, 3)  # type: ignore[union-attr]
    assert c.check(np.zeros((48, 64, 4), np.uint8), 2).shape == (48, 64, 3)  # type: ignore[union-attr]
    assert c.check(np.zeros((48, 64, 2), np.uint8), 3) is None
    assert c.check(np.zeros((48, 64, 3), np.float32), 4) is None
    assert c.check(np.zeros((0, 0, 3), np.uint8), 5) is None
    assert c.check(np.zeros((24, 32, 3), np.uint8), 6) is not None  # a new size is used as is
    assert (c.converted, c.skipped) == (3, 3)


def test_motion_gate_skips_static_frames() -> None:
    g = MotionGate(MotionGateConfig(threshold=2.0, max_skip_s=10.0))
    still = np.full((480, 640, 3), 100, np.uint8)
    moved = still.copy()
    moved[100:300, 100:300] = 250
    runs = [
        g.should_run(img, now=i * 0.1) for i, img in enumerate([still, still, still, moved, moved])
    ]
    assert runs == [True, False, False, True, False]
    assert g.should_run(still, now=100.0)  # max_skip_s forces a run
