"""Sources: camera, video file, network stream, image folder, WAV file, microphone.

``SOURCES`` maps a stream's source type to a factory; ``open_source`` builds one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from edge.config import SourceType, StreamConfig
from edge.sources.audio import MicSource, WavSource
from edge.sources.base import Backoff, Frame, Source
from edge.sources.video import ImageFolderSource, LiveVideoSource, VideoFileSource


def _backoff(s: StreamConfig) -> Backoff:
    return Backoff(s.reconnect_min_s, s.reconnect_max_s)


def _camera(s: StreamConfig, stop: threading.Event) -> Source:
    target = int(s.source) if s.source.isdigit() else s.source
    return LiveVideoSource(
        target,
        stop,
        resolution=s.resolution,
        stall_timeout_s=s.stall_timeout_s,
        backoff=_backoff(s),
    )


def _url(s: StreamConfig, stop: threading.Event) -> Source:
    return LiveVideoSource(s.source, stop, stall_timeout_s=s.stall_timeout_s, backoff=_backoff(s))


def _video(s: StreamConfig, stop: threading.Event) -> Source:
    return VideoFileSource(Path(s.source).expanduser(), loop=s.loop, realtime=s.realtime)


def _images(s: StreamConfig, stop: threading.Event) -> Source:
    return ImageFolderSource(Path(s.source).expanduser(), loop=s.loop)


def _wav(s: StreamConfig, stop: threading.Event) -> Source:
    return WavSource(
        Path(s.source).expanduser(), s.sample_rate, s.chunk_ms, loop=s.loop, realtime=s.realtime
    )


def _mic(s: StreamConfig, stop: threading.Event) -> Source:
    device = s.source.partition(":")[2] or None
    return MicSource(
        device,
        s.sample_rate,
        s.chunk_ms,
        stop,
        stall_timeout_s=s.stall_timeout_s,
        backoff=_backoff(s),
    )


SOURCES: dict[SourceType, Callable[[StreamConfig, threading.Event], Source]] = {
    "camera": _camera,
    "url": _url,
    "video": _video,
    "images": _images,
    "wav": _wav,
    "mic": _mic,
}


def open_source(s: StreamConfig, stop: threading.Event) -> Source:
    """Open the stream's source; ``InputError`` names the source and how to fix it."""
    return SOURCES[s.source_type](s, stop)


__all__ = ["SOURCES", "Backoff", "Frame", "Source", "open_source"]
