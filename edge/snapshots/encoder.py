"""The snapshot encoder: one thread, a bounded queue of jobs, JPEGs out to the sinks.

The vision pipeline's post thread submits a ``SnapshotJob`` (a reference to the frame,
the box, the kinds to make) and never waits: a full queue drops the job and counts it.
The encoder's thread (a ``GuardedThread``: a crash restarts it, a stall turns health
red) downsizes, encodes and bounds each JPEG (``edge.snapshots.encode``), waits until
the job's event has been handed to the sinks (``released``: a snapshot must not reach
the hub before the event it belongs to), then hands each ``Snapshot`` to ``emit``
(``SinkFanout.emit_snapshot``). A job that fails to encode is counted, not retried.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.config.snapshots import SnapshotsConfig
from edge.snapshots import Box, Snapshot
from edge.snapshots.encode import crop, fit_jpeg
from edge.sources.base import Image
from edge.stats import SnapshotStats
from edge.supervise import ComponentHealth, GuardedThread
from edge.wire import SnapshotKind

log = logging.getLogger(__name__)

POLL_S = 0.1
STALL_AFTER_S = 30.0  # one job taking this long: a stuck encode (health red)
RELEASE_WAIT_S = 10.0  # a job's event not emitted by then: the snapshot is dropped
DROP_REASONS = ("queue_full", "too_big", "encode_error", "no_frame", "held_full", "stopped")


@dataclass(slots=True)
class SnapshotJob:
    """One event's pictures: the frame (and its crop) to encode, by reference."""

    event_id: str
    stream: str
    kinds: tuple[SnapshotKind, ...]  # e.g. ("start", "start_crop")
    ts: float  # capture time of the frame
    image: Image  # the frame the detector saw (never written to after capture)
    box: Box  # normalized to the frame
    released: threading.Event = field(default_factory=threading.Event)  # event emitted


class SnapshotCounters:
    """What happened to snapshots, shared across reloads (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._ms: deque[float] = deque(maxlen=256)

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def took(self, n: int, ms: float) -> None:
        with self._lock:
            self.taken += n
            self._ms.append(ms)

    def stats(self, queue_depth: int = 0) -> SnapshotStats:
        with self._lock:
            ms = statistics.median(self._ms) if self._ms else 0.0
            return SnapshotStats(self.taken, dict(self.dropped), round(ms, 3), queue_depth)


def encode_job(job: SnapshotJob, cfg: SnapshotsConfig) -> tuple[list[Snapshot], int]:
    """The job's snapshots, and how many kinds could not fit ``max_bytes``."""
    out: list[Snapshot] = []
    too_big = 0
    for kind in job.kinds:
        if kind.endswith("_crop"):
            image, box = crop(job.image, job.box, cfg.crop_padding)
            jpeg = fit_jpeg(image, cfg.crop_max_dim, cfg.quality, cfg.max_bytes)
        else:
            box = job.box  # normalized: the same on the downsized frame
            jpeg = fit_jpeg(job.image, cfg.max_dim, cfg.quality, cfg.max_bytes)
        if jpeg is None:
            too_big += 1
            continue
        out.append(
            Snapshot(
                job.event_id, job.stream, kind, job.ts, jpeg.data, jpeg.width, jpeg.height, box
            )
        )
    return out, too_big


class SnapshotEncoder:
    """One per daemon generation (every video stream submits here)."""

    def __init__(
        self,
        cfg: SnapshotsConfig,
        emit: Callable[[Snapshot], None],
        counters: SnapshotCounters | None = None,
        *,
        name: str = "snapshots.encoder",
        max_restarts: int = 5,
        window_s: float = 300.0,
        stall_after_s: float = STALL_AFTER_S,
        release_wait_s: float = RELEASE_WAIT_S,
    ) -> None:
        self.cfg = cfg
        self.kinds: tuple[SnapshotKind, ...] = tuple(cfg.kinds)
        self.counters = counters if counters is not None else SnapshotCounters()
        self._emit = emit
        self._q: queue.Queue[SnapshotJob] = queue.Queue(maxsize=cfg.queue)
        self._release_wait_s = release_wait_s
        self._closing = threading.Event()  # drain what is queued, then end
        self._abandon = threading.Event()  # out of time: end after the current job
        self._logged: dict[str, float] = {}
        self._thread = GuardedThread(
            name, self._run, stop=self._closing, max_restarts=max_restarts, window_s=window_s,
            stall_after_s=stall_after_s,
        )  # fmt: skip

    # -- the pipeline's side ---------------------------------------------------------------

    def submit(self, job: SnapshotJob) -> bool:
        """Queue a job without waiting; False (counted) when full or stopping."""
        if self._closing.is_set():
            self.counters.drop("stopped", len(job.kinds))
            return False
        try:
            self._q.put_nowait(job)
        except queue.Full:
            self.counters.drop("queue_full", len(job.kinds))
            return False
        return True

    # -- the owner's side ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float) -> bool:
        """Encode what is queued within ``timeout``; the rest is counted as ``stopped``."""
        self._closing.set()
        done = self._thread.join(timeout)
        if not done:
            self._abandon.set()
        self._drain_unsent()
        return done

    def health(self) -> list[ComponentHealth]:
        return [self._thread.health()]

    def stats(self) -> SnapshotStats:
        return self.counters.stats(self._q.qsize())

    @property
    def queue_depth(self) -> int:
        return self._q.qsize()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._abandon.is_set():
            self._thread.beat()
            try:
                job = self._q.get(timeout=POLL_S)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            self._process(job)

    def _process(self, job: SnapshotJob) -> None:
        t0 = time.perf_counter()
        try:
            shots, too_big = encode_job(job, self.cfg)
        except Exception as exc:  # a frame that cannot be encoded: counted, the next one is
            self.counters.drop("encode_error", len(job.kinds))
            self._log(f"encoding a snapshot failed: {type(exc).__name__}: {exc}")
            return
        ms = (time.perf_counter() - t0) * 1000
        if too_big:
            self.counters.drop("too_big", too_big)
            self._log(f"a snapshot does not fit max_bytes = {self.cfg.max_bytes}; dropped")
        deadline = time.monotonic() + self._release_wait_s
        while not job.released.wait(POLL_S):  # the event is being emitted
            self._thread.beat()
            if time.monotonic() > deadline or self._abandon.is_set():
                self.counters.drop("stopped", len(shots))
                self._log("a snapshot's event was never emitted; snapshot dropped")
                return
        for s in shots:
            self._emit(s)  # SinkFanout.emit_snapshot: counts and logs a sink's failure
        self.counters.took(len(shots), ms)

    def _drain_unsent(self) -> None:
        while True:
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                return
            self.counters.drop("stopped", len(job.kinds))

    def _log(self, message: str) -> None:
        """Once per distinct message per minute (a broken camera would flood the log)."""
        now = time.monotonic()
        last = self._logged.get(message)
        if last is None or now - last >= 60.0:
            if len(self._logged) > 32:
                self._logged.clear()
            self._logged[message] = now
            log.warning("%s", message)
