"""What OpenCV and ffmpeg write to stderr themselves, redacted when they are asked to debug.

At their default levels neither prints a stream's URL (checked: OpenCV 4.x/5.x with its
bundled ffmpeg, on refused, closed and failing RTSP and HTTP sources). Asked for debug
output (``OPENCV_VIDEOIO_DEBUG=1``, ``OPENCV_FFMPEG_DEBUG=1`` with
``OPENCV_FFMPEG_LOGLEVEL`` ≥ 40, ``OPENCV_LOG_LEVEL=DEBUG``) they print it whole, password
included (``trying capture filename='rtsp://admin:pw@…'``, ``Opening 'http://…' for
reading``), from C, on file descriptor 2, past Python's logging.

``NativeStderrRedactor`` then routes fd 2 through a pipe: a thread reads it line by line
and writes each line ``edge.redact``-ed to the real stderr. ``edge run`` starts it only
when one of those variables asks for native debug output, so an ordinary run writes to
stderr directly, as before.

``quiet_native_info`` is the other direction: with ``-q`` (``set_quiet``), the
informational lines LiteRT prints from C while an interpreter is created (``INFO:
Created TensorFlow Lite XNNPACK delegate for CPU.``) are dropped. fd 2 goes to a
temporary file for that moment; everything else written there, a warning or another
thread's log line, is written to the real stderr afterwards, so nothing but the known
noise is lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import BinaryIO

from edge.redact import redact

_TRUE = {"1", "true", "yes", "on"}
_MAX_LINE = 64 * 1024  # a longer run without a newline is written out as it is (redacted)
# what LiteRT / tflite_runtime print at INFO level from C, once per process
NATIVE_INFO = (b"INFO: Created TensorFlow Lite XNNPACK delegate",)
_quiet = False


def set_quiet(on: bool) -> None:
    """``-q`` without ``--debug``: drop the native INFO lines (``quiet_native_info``)."""
    global _quiet
    _quiet = on


def _scratch() -> BinaryIO:
    """A file in memory where Linux has one (``memfd_create``): it needs no writable, non-full
    /tmp; a temporary file elsewhere, or where memfd is refused."""
    if hasattr(os, "memfd_create"):
        try:
            return os.fdopen(os.memfd_create("edge-native-stderr", os.MFD_CLOEXEC), "w+b")
        except OSError:  # an old kernel, a seccomp filter: the temporary file, then
            pass
    import tempfile

    return tempfile.TemporaryFile()


@contextlib.contextmanager
def quiet_native_info() -> Iterator[None]:
    """While open and quiet (``set_quiet``), fd 2 is captured; on close the captured text
    goes to the real fd 2 without the ``NATIVE_INFO`` lines."""
    if not _quiet:
        yield
        return
    sys.stderr.flush()
    with _scratch() as buf:
        saved = os.dup(2)
        os.dup2(buf.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            kept = b"".join(
                line
                for line in buf.read().splitlines(keepends=True)
                if not line.startswith(NATIVE_INFO)
            )
            view = memoryview(kept)
            with contextlib.suppress(OSError):  # the real stderr is gone
                while view:
                    view = view[os.write(2, view) :]


def native_debug_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """The variables in ``environ`` (default ``os.environ``) that make OpenCV or ffmpeg
    print source URLs themselves."""
    env = os.environ if environ is None else environ
    found = [k for k in ("OPENCV_VIDEOIO_DEBUG", "OPENCV_FFMPEG_DEBUG")
             if env.get(k, "").strip().lower() in _TRUE]  # fmt: skip
    if env.get("OPENCV_LOG_LEVEL", "").strip().upper() in ("DEBUG", "D", "VERBOSE", "V"):
        found.append("OPENCV_LOG_LEVEL")
    return found


class NativeStderrRedactor:
    """While open, everything written to file descriptor 2 (by Python or by C) reaches the
    real stderr line by line, redacted. Closing restores fd 2 and drains what is left."""

    def __init__(self) -> None:
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> NativeStderrRedactor:
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        self._saved = os.dup(2)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(
            target=self._pump, args=(read_end, self._saved), name="stderr-redact", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes our last write end: the pump reads to the end
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        os.close(self._saved)
        self._saved = None

    @staticmethod
    def _write(out: int, data: bytes) -> None:
        try:
            text = redact(data.decode("utf-8", "surrogateescape"))
        except Exception:  # never pass on what could not be checked
            text = f"({len(data)} bytes of native stderr dropped: they could not be redacted)\n"
        view = memoryview(text.encode("utf-8", "surrogateescape"))
        while view:
            view = view[os.write(out, view) :]

    def _pump(self, read_end: int, out: int) -> None:
        pending = b""
        try:
            while chunk := os.read(read_end, 65536):
                pending += chunk
                head, sep, pending = pending.rpartition(b"\n")
                if sep:
                    self._write(out, head + sep)
                if len(pending) > _MAX_LINE:
                    self._write(out, pending)
                    pending = b""
            if pending:
                self._write(out, pending)
        except OSError:
            pass  # the real stderr is gone: nothing left to write to
        finally:
            os.close(read_end)


__all__ = [
    "NATIVE_INFO",
    "NativeStderrRedactor",
    "native_debug_vars",
    "quiet_native_info",
    "set_quiet",
]
