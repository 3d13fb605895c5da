"""Video sources through OpenCV: files, image folders, cameras (V4L2) and network streams.

Files deliver every frame in order and end (or loop); their capture time is the
media time from the moment the file opened. Live sources (camera, URL) stamp
the wall clock, reconnect with capped jittered backoff and count reconnects; a
network read that yields nothing for ``stall_timeout_s`` fails and reconnects.

OpenCV is imported where a source opens or decodes, not with this module: an audio-only
daemon imports ``edge.sources`` but never loads OpenCV.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.redact import redact
from edge.sources.base import Backoff, Frame, Image, wait

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class VideoFileSource:
    live = False

    def __init__(self, path: Path, *, loop: bool = False, realtime: bool = False) -> None:
        self.path = path
        self.loop = loop
        self.realtime = realtime
        self.reconnects = 0
        if not path.is_file():
            raise InputError(f"{path}: video file not found; fix the stream's `source`")
        import cv2

        self._cap = self._open()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 25.0
        if not 1.0 <= self.fps <= 1000.0:
            self.fps = 25.0
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(
                f"{path}: no frame could be decoded (corrupt file or unsupported codec); "
                "re-encode it, e.g. `ffmpeg -i in -c:v mjpeg out.avi`"
            )
        self._pending: Image | None = first
        self._index = 0
        self._pos = 0  # frames into the current pass
        self.t0 = time.time()
        self._m0 = time.monotonic()

    def _open(self) -> Any:
        import cv2

        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise InputError(f"{self.path}: cannot open the video (corrupt or unsupported format)")
        return cap

    def read(self) -> Frame | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                if not self.loop or self._pos == 0:
                    return None
                self._cap.release()
                self._cap = self._open()
                self._pos = 0
                ok, image = self._cap.read()
                if not ok or image is None:
                    return None
        media_s = self._index / self.fps
        if self.realtime:
            delay = self._m0 + media_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = Frame(self._index, self.t0 + media_s, time.monotonic(), image=image)
        self._index += 1
        self._pos += 1
        return frame

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource:
    """Every image of a folder in name order; unreadable files are skipped and logged."""

    live = False

    def __init__(self, folder: Path, *, loop: bool = False) -> None:
        if not folder.is_dir():
            raise InputError(f"{folder}: image folder not found; fix the stream's `source`")
        self.files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(
                f"{folder}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        self.loop = loop
        self.reconnects = 0
        self.skipped = 0
        self._i = 0
        self._index = 0

    def read(self) -> Frame | None:
        while True:
            if self._i >= len(self.files):
                if not self.loop:
                    return None
                self._i = 0
            path = self.files[self._i]
            self._i += 1
            import cv2

            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.skipped += 1
                log.warning("%s: cannot decode the image; skipped", path)
                if self.skipped > len(self.files) and self._index == 0:
                    return None
                continue
            frame = Frame(self._index, time.time(), time.monotonic(), image=np.asarray(image))
            self._index += 1
            return frame

    def close(self) -> None:
        pass


class LiveVideoSource:
    """A camera index or a stream URL, reopened with backoff whenever it fails or stalls.

    ``target`` is what OpenCV opens, credentials and all; ``name`` is what the source says
    about itself in logs and errors: the URL with its password masked (``edge.redact``)."""

    live = True

    def __init__(
        self,
        target: int | str,
        stop: threading.Event,
        *,
        resolution: tuple[int, int] | None = None,
        stall_timeout_s: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else redact(target)
        self.reconnects = 0
        self.failures = 0
        self._stop = stop
        self._resolution = resolution
        self._timeout_ms = int(stall_timeout_s * 1000)
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._cap: Any = None
        self._index = 0
        self._ever_opened = False

    def _open(self) -> Any:
        import cv2

        if isinstance(self.target, int):
            cap = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
            if self._resolution is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._resolution[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._resolution[1])
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout_ms,
            ]  # fmt: skip
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _drop(self, why: str) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self.failures += 1
        log.warning("%s: %s; reconnecting", self.name, why)

    def read(self) -> Frame | None:
        while not self._stop.is_set():
            if self._cap is None:
                retry = self._ever_opened or self.failures
                if retry and wait(self._stop, self._backoff.next_delay()):
                    return None
                self._cap = self._open()
                if self._cap is None:
                    self.failures += 1
                    log.warning("%s: cannot open (attempt %d)", self.name, self._backoff.attempt)
                    continue
                if self._ever_opened:
                    self.reconnects += 1
                    log.info("%s: reconnected (reconnect %d)", self.name, self.reconnects)
                self._ever_opened = True
            ok, image = self._cap.read()
            if not ok or image is None:
                self._drop("no frame (source ended, failed or stalled)")
                continue
            self._backoff.reset()
            frame = Frame(self._index, time.time(), time.monotonic(), image=image)
            self._index += 1
            return frame
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
