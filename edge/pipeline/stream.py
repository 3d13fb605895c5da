"""One stream's pipeline: capture → infer → post (track, events), each in its own thread.

Capture and inference overlap (OpenCV decode and the runtimes release the GIL).
The capture queue is bounded: live sources keep only the latest frame (drops
counted), file sources block (no drops). The post thread turns detections into
events and hands them to ``emit``. ``stop()`` stops capture; what is queued is
drained, open events are ended, then the threads exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from edge.config import StreamConfig, TrackingConfig
from edge.detectors.base import AudioDetector, Detection, ImageDetector, Segment
from edge.errors import EdgeError, InputError
from edge.events import Event
from edge.pipeline.audio_events import AudioEvents
from edge.pipeline.frames import FrameChecker, MotionGate
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot
from edge.sources import Frame, Source, open_source
from edge.sources.base import Image
from edge.supervise import ComponentHealth
from edge.tracking import Observation, Step, Tracker

log = logging.getLogger(__name__)

_END = object()
AudioResult = tuple[list[Segment], Segment | None]


def _in_zones(zones: list[Any], x: float, y: float) -> bool:
    return any(cv2.pointPolygonTest(z, (x, y), False) >= 0 for z in zones)


class StreamRunner:
    def __init__(
        self,
        cfg: StreamConfig,
        slots: list[DetectorSlot],
        tracking: TrackingConfig,
        emit: Callable[[list[Event]], None],
        source: Source | None = None,
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
        self.stop_event = threading.Event()
        self.source = source if source is not None else open_source(cfg, self.stop_event)
        self.metrics = StreamMetrics(cfg.name)
        self.live = self.source.live
        self._emit = emit
        self._pending: list[Event] = []  # events of the current post step, emitted together
        self._in_q: queue.Queue[Any] = queue.Queue(maxsize=1 if self.live else 8)
        self._post_q: queue.Queue[Any] = queue.Queue(maxsize=64)
        self._checker = FrameChecker(cfg.name)
        self._gate = (
            MotionGate(cfg.motion_gate) if cfg.motion_gate and cfg.motion_gate.enabled else None
        )
        self._zones = [np.asarray(z, np.float32).reshape(-1, 1, 2) for z in cfg.zones]
        self._trackers = {s.name: Tracker(tracking) for s in slots if not s.is_audio}
        self._audio = {
            s.name: AudioEvents(cfg.name, s.ref, tracking.audio_min_s, cfg.sample_rate)
            for s in slots
            if s.is_audio
        }
        for s in slots:
            if s.is_audio:
                rate = getattr(s.detector.manifest.input, "sample_rate", cfg.sample_rate)
                if rate != cfg.sample_rate:
                    raise InputError(
                        f"streams.{cfg.name}: detector {s.name} needs {rate} Hz audio; "
                        f"set sample_rate = {rate}"
                    )
                s.detector.reset()  # type: ignore[union-attr]  # audio slots hold AudioDetectors
        self._last_results: dict[str, list[Detection]] = {}
        self.last_image: Image | None = None
        self._threads: list[threading.Thread] = []
        self.done = threading.Event()

    # -- control ---------------------------------------------------------------------

    def start(self) -> None:
        for name, target in (
            ("capture", self._capture),
            ("infer", self._infer),
            ("post", self._post),
        ):
            t = threading.Thread(target=target, name=f"{self.cfg.name}-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        """Wait for infer and post to finish (capture may sit in a blocking read); True if done."""
        deadline = time.monotonic() + timeout
        for t in self._threads[1:]:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads[0].join(max(0.0, min(0.2, deadline - time.monotonic())))
        if not self._threads[0].is_alive():
            self.source.close()
        return self.done.is_set()

    def healthy(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        m = self.metrics
        return (
            m.error is None and m.last_frame > 0 and now - m.last_frame <= self.cfg.stall_timeout_s
        )

    def health(self) -> list[ComponentHealth]:
        """Minimal: each of this stream's threads is running, or has finished because the
        stream ended or was stopped (the pipeline's GuardedThreads report more)."""
        ended = self.done.is_set() or self.stop_event.is_set()
        return [
            ComponentHealth(t.name, t.is_alive() or ended,
                            None if t.is_alive() or ended else "thread is not running")
            for t in self._threads
        ]  # fmt: skip

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
        except EdgeError as exc:
            m.error = str(exc)
            log.error("%s: %s", self.cfg.name, exc)
        except Exception as exc:  # a source failure must end this stream, not the daemon
            m.error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: capture failed", self.cfg.name)
        finally:
            m.reconnects = self.source.reconnects
            self._put(_END, force=True)

    def _put(self, item: Any, force: bool = False) -> None:
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
                    if old is not _END:
                        self.metrics.dropped += 1
        while True:
            try:
                self._in_q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop_event.is_set() and not force:
                    return
                if force and self.stop_event.is_set() and not self._threads[1].is_alive():
                    return

    # -- inference -------------------------------------------------------------------

    def _infer(self) -> None:
        try:
            while True:
                try:
                    item = self._in_q.get(timeout=0.1)
                except queue.Empty:
                    if self.stop_event.is_set():
                        break
                    continue
                if item is _END:
                    break
                self._queues()
                if item.audio is not None:
                    self._infer_audio(item)
                else:
                    self._infer_image(item)
        finally:
            flushed: dict[str, list[Segment]] = {}
            for s in self.slots:
                if s.is_audio:
                    with s.lock:
                        try:
                            flushed[s.name] = s.detector.flush()  # type: ignore[union-attr]  # audio slot
                        except Exception:  # flushing must not block the end events
                            log.exception("%s: %s flush failed", self.cfg.name, s.name)
            self._post_q.put((_END, flushed))

    def _infer_image(self, frame: Frame) -> None:
        m = self.metrics
        image = self._checker.check(frame.image, frame.index)
        m.skipped, m.converted = self._checker.skipped, self._checker.converted
        if image is None:
            return
        self.last_image = image
        if self._gate is not None and not self._gate.should_run(image):
            m.gated += 1
            results = self._last_results
        else:
            results = {}
            for s in self.slots:
                det: ImageDetector = s.detector  # type: ignore[assignment]  # image slot
                try:
                    with s.lock:
                        results[s.name] = det.detect(image)
                        times = dict(det.times.ms)
                except Exception as exc:  # one bad frame must not stop the stream
                    m.skipped += 1
                    log.warning(
                        "%s: %s failed on frame %d: %s", self.cfg.name, s.name, frame.index, exc
                    )
                    continue
                for k, v in times.items():
                    m.stage(f"{s.name}.{k}", v)
            self._last_results = results
            m.processed += 1
            m.rate_processed.mark()
        self._post_q.put((frame, (image.shape[1], image.shape[0]), results))

    def _infer_audio(self, frame: Frame) -> None:
        m = self.metrics
        assert frame.audio is not None
        chunk = frame.audio
        if chunk.ndim != 1 or chunk.dtype != np.float32:
            m.skipped += 1
            log.warning(
                "%s: audio chunk %d of shape %s skipped", self.cfg.name, frame.index, chunk.shape
            )
            return
        results: dict[str, AudioResult] = {}
        for s in self.slots:
            det: AudioDetector = s.detector  # type: ignore[assignment]  # audio slot
            t0 = time.perf_counter()
            with s.lock:
                closed = det.feed(chunk)
                active = det.active
            m.stage(f"{s.name}.infer", (time.perf_counter() - t0) * 1000)
            results[s.name] = (closed, active)
        m.processed += 1
        m.rate_processed.mark()
        self._post_q.put((frame, None, results))

    # -- post: tracking and events -----------------------------------------------------

    def _post(self) -> None:
        try:
            while True:
                item = self._post_q.get()
                if item[0] is _END:
                    self._finish(item[1])
                    self._flush_events()
                    break
                frame, size, results = item
                self._queues()
                latency = (time.monotonic() - frame.t_read) * 1000
                if size is None:
                    for name, (closed, active) in results.items():
                        for ev in self._audio[name].step(frame, closed, active, latency):
                            self._send(ev)
                else:
                    for name, dets in results.items():
                        obs = self._observations(dets, size)
                        steps = self._trackers[name].update(obs, frame.ts)
                        self._send_steps(name, steps, latency)
                self._flush_events()
        except Exception:  # keep the daemon alive; the stream is reported down
            self.metrics.error = "post-processing failed"
            log.exception("%s: post-processing failed", self.cfg.name)
        finally:
            self.metrics.ended = True
            self.done.set()

    def _finish(self, flushed: dict[str, list[Segment]]) -> None:
        for name, tracker in self._trackers.items():
            self._send_steps(name, tracker.finish(), 0.0)
        for name, builder in self._audio.items():
            for ev in builder.finish(flushed.get(name, [])):
                self._send(ev)

    def _observations(self, dets: list[Detection], size: tuple[int, int]) -> list[Observation]:
        w, h = size
        out = []
        for d in dets:
            x1, y1, x2, y2 = d.box
            box = (
                min(max(x1 / w, 0.0), 1.0),
                min(max(y1 / h, 0.0), 1.0),
                min(max(x2 / w, 0.0), 1.0),
                min(max(y2 / h, 0.0), 1.0),
            )
            if self._zones and not _in_zones(
                self._zones, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            ):
                continue
            out.append(Observation(d.label, d.score, box))
        return out

    def _send_steps(self, name: str, steps: list[Step], latency: float) -> None:
        if not steps:  # the common case, every frame: no lookup, no allocation
            return
        ref = next(s.ref for s in self.slots if s.name == name)
        for st in steps:
            t = st.track
            self._send(
                Event(
                    stream=self.cfg.name,
                    kind="vision",
                    label=t.label,
                    score=t.score,
                    phase=st.phase,
                    started_at=t.started_at,
                    ts=st.ts,
                    model=ref,
                    track_id=t.id,
                    box=t.box,
                    latency_ms=latency,
                )
            )

    def _send(self, ev: Event) -> None:
        self.metrics.events[ev.phase] += 1
        self._pending.append(ev)

    def _flush_events(self) -> None:
        """Hand the step's events to the sinks in one call (one outbox transaction)."""
        if self._pending:
            events, self._pending = self._pending, []
            self._emit(events)
