"""Audio sources: a WAV file (read exactly, chunk by chunk) and a microphone.

The microphone needs the optional ``sounddevice`` package (``edgewise[audio]``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.media.audio import read_audio
from edge.sources.base import Audio, Backoff, Frame, wait

log = logging.getLogger(__name__)


class WavSource:
    live = False

    def __init__(
        self, path: Path, rate: int, chunk_ms: int, *, loop: bool = False, realtime: bool = False
    ) -> None:
        if not path.is_file():
            raise InputError(f"{path}: WAV file not found; fix the stream's `source`")
        self.samples = read_audio(path, rate)
        if self.samples.size == 0:
            raise InputError(f"{path}: the WAV file has no samples")
        self.rate = rate
        self.chunk = max(1, rate * chunk_ms // 1000)
        self.loop = loop
        self.realtime = realtime
        self.reconnects = 0
        self._pos = 0  # samples delivered in total
        self._index = 0
        self.t0 = time.time()
        self._m0 = time.monotonic()

    def read(self) -> Frame | None:
        n = self.samples.size
        at = self._pos % n if self.loop else self._pos
        if at >= n:
            return None
        chunk = self.samples[at : min(at + self.chunk, n)]
        offset = self._pos / self.rate
        if self.realtime:
            delay = self._m0 + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = Frame(self._index, self.t0 + offset, time.monotonic(), audio=chunk, offset_s=offset)
        self._pos += chunk.size
        self._index += 1
        return frame

    def close(self) -> None:
        pass


def _import_sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise InputError(
            f"microphone sources need sounddevice and PortAudio ({exc}); "
            "install them with `pip install 'edgewise[audio]'` and `apt install libportaudio2`"
        ) from None
    return sounddevice


class MicSource:
    """Chunks from a sound card; a stream that errors or stalls is reopened with backoff."""

    live = True

    def __init__(
        self,
        device: str | None,
        rate: int,
        chunk_ms: int,
        stop: threading.Event,
        *,
        stall_timeout_s: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._sd = _import_sounddevice()
        self.device: int | str | None = int(device) if device and device.isdigit() else device
        self.rate = rate
        self.chunk = max(1, rate * chunk_ms // 1000)
        self.reconnects = 0
        self._stop = stop
        self._stall = stall_timeout_s
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._q: queue.Queue[Audio] = queue.Queue(maxsize=64)
        self._stream: Any = None
        self._pos = 0
        self._index = 0
        self._opened_once = False

    def _callback(self, data: Any, frames: int, t: Any, status: Any) -> None:
        try:
            self._q.put_nowait(np.asarray(data, dtype=np.float32).mean(axis=1))
        except queue.Full:
            log.warning("microphone: chunk dropped (the pipeline is behind)")

    def _open(self) -> bool:
        try:
            self._stream = self._sd.InputStream(
                samplerate=self.rate,
                channels=1,
                dtype="float32",
                blocksize=self.chunk,
                device=self.device,
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # PortAudio raises its own error types
            log.warning("microphone %s: cannot open (%s)", self.device, exc)
            self._stream = None
            return False
        if self._opened_once:
            self.reconnects += 1
        self._opened_once = True
        return True

    def read(self) -> Frame | None:
        while not self._stop.is_set():
            if self._stream is None:
                if self._opened_once and wait(self._stop, self._backoff.next_delay()):
                    return None
                if not self._open():
                    continue
            try:
                chunk = self._q.get(timeout=self._stall)
            except queue.Empty:
                log.warning(
                    "microphone %s: no audio for %.1f s; reopening", self.device, self._stall
                )
                self.close()
                continue
            self._backoff.reset()
            offset = self._pos / self.rate
            self._pos += chunk.size
            frame = Frame(self._index, time.time(), time.monotonic(), audio=chunk, offset_s=offset)
            self._index += 1
            return frame
        return None

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:  # PortAudio raises its own error types
                log.debug("microphone close: %s", exc)
            self._stream = None
