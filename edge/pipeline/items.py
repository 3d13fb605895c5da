"""What travels between a stream's threads, and the one way events leave the pipeline.

capture → ``Frame`` (or ``END_CAPTURE``) → infer → ``Inferred`` (or ``EndOfStream``) → post.
Each kind of stream (``vision``, ``audio``) is a ``Pipeline``: the runner
(``edge.pipeline.stream``) owns threads, queues and draining, the pipeline owns
what happens to one item. Every event either pipeline makes goes into an
``EventBatch``: counted once per phase, handed to the sinks once per step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from edge.detectors.base import Segment
from edge.events import Event
from edge.pipeline.metrics import StreamMetrics
from edge.sources import Frame

if TYPE_CHECKING:  # annotations only: slots imports the detectors, config the schema
    from edge.config import StreamConfig
    from edge.pipeline.slots import DetectorSlot


class EndCapture:
    """Capture ended (file over, stopped, or the source failed): nothing more follows."""

    __slots__ = ()


END_CAPTURE: Final = EndCapture()
CaptureItem = Frame | EndCapture


@dataclass(slots=True)
class Inferred:
    """One frame (chunk) and what the detectors said about it."""

    frame: Frame


@dataclass(slots=True)
class EndOfStream:
    """After the last ``Inferred``: what the detectors' flush closed, per detector."""

    flushed: dict[str, list[Segment]] = field(default_factory=dict)


PostItem = Inferred | EndOfStream


class EventBatch:
    """The events of one post step: counted per phase, emitted together (one outbox
    transaction per frame)."""

    def __init__(self, metrics: StreamMetrics, emit: Callable[[list[Event]], None]) -> None:
        self._metrics = metrics
        self._emit = emit
        self._pending: list[Event] = []
        self._after: list[Callable[[], None]] = []

    def after_flush(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the events added so far were handed over (snapshots wait for it)."""
        self._after.append(fn)

    def add(self, event: Event) -> None:
        ev = self._metrics.events
        ev[event.phase] = ev.get(event.phase, 0) + 1
        self._pending.append(event)

    def flush(self) -> None:
        try:
            if self._pending:
                events, self._pending = self._pending, []
                self._emit(events)
        finally:
            after, self._after = self._after, []
            for fn in after:
                fn()


class Pipeline(ABC):
    """What a stream does to one item; called by the runner's infer and post threads."""

    def __init__(
        self, cfg: StreamConfig, slots: list[DetectorSlot], metrics: StreamMetrics
    ) -> None:
        self.cfg = cfg
        self.slots = slots
        self.metrics = metrics

    @abstractmethod
    def infer(self, frame: Frame) -> Inferred | None:
        """Run the detectors on one frame (chunk); None: nothing to post (frame skipped)."""

    @abstractmethod
    def post(self, item: Inferred, latency_ms: float, out: EventBatch) -> None:
        """Turn one inferred frame into events."""

    @abstractmethod
    def flush(self) -> EndOfStream:
        """End of input (infer thread): what the detectors still hold."""

    @abstractmethod
    def finish(self, end: EndOfStream, out: EventBatch) -> None:
        """End of stream (post thread): end every open event."""
