"""One stream's runner: capture → infer → post, each a ``GuardedThread``, typed queues between.

Capture and inference overlap (OpenCV decode and the runtimes release the GIL).
The capture queue is bounded: live sources keep only the latest frame (drops
counted), file sources block (no drops). What happens to one item is the
stream's ``Pipeline`` (``VisionPipeline`` or ``AudioPipeline``); events leave
through one ``EventBatch`` per post step. ``stop()`` stops capture; what is
queued is drained, open events are ended, then the threads exit.

Crashes (an exception that escapes a thread; a detector failing on one frame is
not one, it is counted as a skipped frame):

- infer, post: restarted by their ``GuardedThread`` with the queues intact; the
  one item the thread was holding is dropped (counted in ``skipped``), since a
  frame that crashed the code once would crash it again.
- capture, live source (camera, url, mic): restarted; the source reconnects on
  the next read, as after any network failure.
- capture, file source (video, images, wav): not reopened. Reopening would replay
  the file from its start and repeat events that were already sent; instead the
  stream ends as for a corrupt file: open events are ended, ``metrics.error`` says
  why, ``health()`` reports it, and ``edge run`` exits non-zero once every source ended.
- A run of file sources that ends after an infer or post crash (``crashes()``) is
  incomplete, the events of the dropped items are missing: ``edge run`` exits 1.

A thread that crashes more than ``max_restarts`` times in ``window_s`` is fatal:
its ``health()`` says so and the daemon's supervisor exits non-zero.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from edge.config import StreamConfig, TrackingConfig
from edge.errors import EdgeError, InputError
from edge.events import Event
from edge.pipeline import affinity
from edge.pipeline.audio import AudioPipeline
from edge.pipeline.items import (
    END_CAPTURE,
    CaptureItem,
    EndCapture,
    EndOfStream,
    EventBatch,
    Pipeline,
    PostItem,
)
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot
from edge.pipeline.vision import VisionPipeline
from edge.redact import redact
from edge.snapshots.encoder import SnapshotEncoder
from edge.sources import Source, open_source
from edge.sources.base import Image
from edge.stats import StreamStats
from edge.supervise import ComponentHealth, GuardedThread

log = logging.getLogger(__name__)


def single_threaded_opencv() -> None:
    """OpenCV's own thread pool off (``cv2.setNumThreads(1)``), once a video stream starts.

    A stream already runs decode, inference and post in parallel threads; OpenCV splitting
    each resize or colour conversion of the pre-processing across the cores only makes the
    inference thread wait for the core that is decoding. Measured on 2 cores
    (bench/bench_pipeline.py's round): the pipeline 367 → 399 frames/s, a bare
    decode-thread + detect loop 353 → 455, at the price of ~7% on a lone ``detect`` loop
    with nothing else running (which ``edge detect`` keeps: it never starts a stream)."""
    import cv2

    cv2.setNumThreads(1)


# infer/post: one item taking this long means a stuck call (reported, cannot be interrupted)
STALL_AFTER_S = 60.0
_POLL_S = 0.1


class StreamRunner:
    def __init__(
        self,
        cfg: StreamConfig,
        slots: list[DetectorSlot],
        tracking: TrackingConfig,
        emit: Callable[[list[Event]], None],
        source: Source | None = None,
        *,
        snapshots: SnapshotEncoder | None = None,
        max_restarts: int = 5,
        window_s: float = 300.0,
    ) -> None:
        kinds = {s.is_audio for s in slots}
        if kinds != {cfg.is_audio}:
            want = "audio" if cfg.is_audio else "image"
            bad = [s.name for s in slots if s.is_audio != cfg.is_audio]
            raise InputError(
                f"streams.{cfg.name}: detectors {bad} do not take {want} input; "
                f"a {cfg.source_type} stream runs {want} detectors only"
            )
        self.cfg = cfg
        self.slots = slots
        self.cpus = affinity.check(cfg.name, cfg.cpus)  # before any source is opened
        self.metrics = StreamMetrics(cfg.name)
        self._vision: VisionPipeline | None = None
        self.pipeline: Pipeline
        if cfg.is_audio:
            self.pipeline = AudioPipeline(cfg, slots, tracking, self.metrics)
        else:
            self._vision = VisionPipeline(cfg, slots, tracking, self.metrics, snapshots)
            self.pipeline = self._vision
        self.stop_event = threading.Event()  # stop capturing (then drain)
        self._halt = threading.Event()  # stop restarting infer/post (after the drain)
        self.source = source if source is not None else open_source(cfg, self.stop_event)
        self.live = self.source.live
        self._in_q: queue.Queue[CaptureItem] = queue.Queue(maxsize=1 if self.live else 8)
        self._post_q: queue.Queue[PostItem] = queue.Queue(maxsize=64)
        self._batch = EventBatch(self.metrics, emit)
        self.done = threading.Event()
        self._started_at = 0.0
        self._input_ended = False  # infer took the capture's end marker
        self._ending: EndOfStream | None = None  # post took the end-of-stream marker
        name = cfg.name  # components: "<stream>.capture", ".infer", ".post", ".source"

        def guarded(part: str, target: Callable[[], None], stop: threading.Event,
                    stall: float | None) -> GuardedThread:  # fmt: skip
            cpus = self.cpus.get(part)

            def run() -> None:
                # each (re)start: a restarted loop runs where it was put
                affinity.pin(cpus, f"streams.{name}.cpus.{part}")
                target()

            # forever=False: each part ends by itself (capture at the end of a file)
            return GuardedThread(
                f"{name}.{part}", run if cpus else target, stop=stop, forever=False,
                max_restarts=max_restarts, window_s=window_s, stall_after_s=stall,
            )  # fmt: skip

        self._capture_t = guarded("capture", self._capture, self.stop_event, None)
        self._infer_t = guarded("infer", self._infer, self._halt, STALL_AFTER_S)
        self._post_t = guarded("post", self._post, self._halt, STALL_AFTER_S)
        self._threads = (self._capture_t, self._infer_t, self._post_t)

    @property
    def last_image(self) -> Image | None:
        """The last video frame that reached the detectors (snapshots); None for audio."""
        return self._vision.last_image if self._vision is not None else None

    # -- control ---------------------------------------------------------------------

    def start(self) -> None:
        if self._vision is not None:
            single_threaded_opencv()
        self._started_at = time.monotonic()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        """Wait for infer and post to finish (capture may sit in a blocking read); True if done."""
        deadline = time.monotonic() + timeout
        for t in (self._infer_t, self._post_t):
            t.join(max(0.0, deadline - time.monotonic()))
        self._capture_t.join(max(0.0, min(0.2, deadline - time.monotonic())))
        self._halt.set()
        if not self._capture_t.is_alive():
            self.source.close()
        self._check_fatal()
        return self.done.is_set()

    def healthy(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        m = self.metrics
        return (
            m.error is None and m.last_frame > 0 and now - m.last_frame <= self.cfg.stall_timeout_s
        )

    def health(self, now: float | None = None) -> list[ComponentHealth]:
        """Each thread, then the stream itself: a live source without frames for
        ``stall_timeout_s``, a source that ended with an error."""
        self._check_fatal()
        out = [t.health() for t in self._threads]
        out.append(self._stream_health(time.monotonic() if now is None else now))
        return out

    def crashes(self) -> dict[str, int]:
        """Restarts of the threads whose crash drops the item they held (infer, post), by
        thread name; a file run that ends with any is incomplete (``edge run`` exits 1)."""
        return {t.name: t.restarts for t in (self._infer_t, self._post_t) if t.restarts}

    def stats(self) -> StreamStats:
        restarts = sum(t.restarts for t in self._threads)
        return self.metrics.snapshot("audio" if self.cfg.is_audio else "video", self.live, restarts)

    def _stream_health(self, now: float) -> ComponentHealth:
        name, m = f"{self.cfg.name}.source", self.metrics
        restarts = sum(t.restarts for t in self._threads)
        if m.error is not None:
            return ComponentHealth(name, False, f"stream ended with an error: {m.error}", restarts)
        if m.ended or self.stop_event.is_set() or not self._started_at:
            return ComponentHealth(name, True, "ended" if m.ended else None, restarts)
        limit, since = self.cfg.stall_timeout_s, now - (m.last_frame or self._started_at)
        if self.live and since > limit:
            what = "frame" if m.last_frame else f"frame from the {self.cfg.source_type} source"
            # the camera or stream is down, not this process (capture keeps reconnecting)
            return ComponentHealth(name, False, f"no {what} for {since:.0f} s", restarts,
                                   dependency=True)  # fmt: skip
        return ComponentHealth(name, True, None, restarts)

    def _check_fatal(self) -> None:
        """A thread that gave up ends the stream: say why, and let waiters go."""
        dead = [t for t in self._threads if t.fatal]
        if not dead:
            return
        self.stop_event.set()  # the stream is over: stop capturing what nobody will process
        if self.metrics.error is None:
            self.metrics.error = f"{dead[0].name} failed for good: {dead[0].last_error}"
        if self._post_t.fatal and not self.done.is_set():
            self.metrics.ended = True
            self.done.set()

    def _queues(self) -> None:
        self.metrics.queue_depth["capture"] = self._in_q.qsize()
        self.metrics.queue_depth["post"] = self._post_q.qsize()

    # -- capture ---------------------------------------------------------------------

    def _capture(self) -> None:
        m = self.metrics
        interval = 1.0 / self.cfg.fps_limit if self.cfg.fps_limit else 0.0
        next_t = 0.0
        try:
            while not self.stop_event.is_set():
                self._capture_t.beat()
                t0 = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    break
                m.stage("read", (time.perf_counter() - t0) * 1000)
                m.frames_in += 1
                m.last_frame = time.monotonic()
                m.rate_in.mark(m.last_frame)
                m.reconnects = self.source.reconnects
                if interval:
                    if m.last_frame < next_t:
                        if self.live:
                            m.dropped += 1
                            continue
                        time.sleep(next_t - m.last_frame)
                    next_t = max(next_t + interval, m.last_frame)
                self._put(frame)
        except EdgeError as exc:  # the source says it cannot go on (file corrupt, gone)
            m.error = redact(str(exc))
            log.error("%s: %s", self.cfg.name, exc)
        except Exception as exc:
            if self.live and not self.stop_event.is_set():
                raise  # GuardedThread restarts capture; the source reconnects on the next read
            # a file source is not reopened (it would replay frames already sent): it ends
            m.error = redact(f"capture failed: {type(exc).__name__}: {exc}")
            log.exception("%s: capture failed; the stream ends", self.cfg.name)
        m.reconnects = self.source.reconnects
        self._put(END_CAPTURE, force=True)

    def _put(self, item: CaptureItem, force: bool = False) -> None:
        if self.live:
            while True:
                try:
                    self._in_q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        old = self._in_q.get_nowait()
                    except queue.Empty:
                        continue
                    if old is not END_CAPTURE:
                        self.metrics.dropped += 1
        while True:
            try:
                self._in_q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._capture_t.beat()  # waiting on a slow detector is progress
                if self._infer_t.fatal:
                    self._check_fatal()  # nobody will take it: the stream is over
                    return
                if self.stop_event.is_set() and not force:
                    return
                if force and self.stop_event.is_set() and not self._infer_t.is_alive():
                    return

    # -- inference -------------------------------------------------------------------

    def _infer(self) -> None:
        """Until the capture's end marker (or stop): detectors, then hand over to post.
        An exception here escapes to the GuardedThread, which restarts this loop on the
        same queues; the end-of-stream marker is only sent once the input really ended."""
        while not self._input_ended:  # a restart after the end marker goes on to the flush
            self._infer_t.beat()
            try:
                item = self._in_q.get(timeout=_POLL_S)
            except queue.Empty:
                if self.stop_event.is_set() or self._capture_t.fatal:
                    break
                continue
            if isinstance(item, EndCapture):
                self._input_ended = True
                break
            self._queues()
            try:
                result = self.pipeline.infer(item)
            except Exception:
                self.metrics.skipped += 1  # the frame it was holding is not retried
                raise
            if result is not None:
                self._post_q.put(result)
        self._post_q.put(self.pipeline.flush())

    # -- post: tracking and events -----------------------------------------------------

    def _post(self) -> None:
        """Events per item; at the end, every open event ends. Crashes restart this loop
        (the tracker state and the queue are kept); the crashing item is dropped."""
        while True:
            self._post_t.beat()
            try:
                # a restart after the end marker ends again (what finish() ended stays ended)
                item = self._ending or self._post_q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._infer_t.fatal:
                    self._check_fatal()
                    item = EndOfStream()  # no end marker will come: end what is open
                else:
                    continue
            if isinstance(item, EndOfStream):
                self._ending = item
                self.pipeline.finish(item, self._batch)
                self._batch.flush()
                break
            self._queues()
            latency = (time.monotonic() - item.frame.t_read) * 1000
            try:
                self.pipeline.post(item, latency, self._batch)
            except Exception:
                self.metrics.skipped += 1
                raise
            finally:
                self._batch.flush()  # the events made before a crash are real: send them
        self.metrics.ended = True
        self.done.set()
