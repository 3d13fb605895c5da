"""The vision pipeline's side of snapshots: which frame each track's pictures show.

On a track's ``start`` event its frame is submitted (``start``, ``start_crop``) and
held as the track's best so far; each later frame that matches the track with a
higher score replaces it; at its ``end`` event the best is submitted (``best``,
``best_crop``) under the end event's id. Held frames are references to the frames the
detector saw (sources allocate a new array per frame and nothing writes to one after
capture), so holding costs no copy. The memory bound: at most ``max_held`` tracks hold
one, and the distinct frames held stay under ``max_held_bytes`` (tracks seen in one
frame share it); a track started past either gets no best pictures (``held_full``), and
a better frame that would break the byte bound is passed over.

``Event.snapshots`` is set to the kinds of a job the encoder's queue accepted. Jobs
are released to the sinks only after the post step handed its events to the sinks
(``release``), so a picture never arrives before its event.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.events import Event
from edge.snapshots import Box
from edge.snapshots.encoder import SnapshotCounters, SnapshotEncoder, SnapshotJob
from edge.sources.base import Image
from edge.wire import SnapshotKind

MAX_HELD = 32
"""Tracks holding a best frame at once, per stream (each holds one frame by reference)."""
MAX_HELD_BYTES = 128 * 1024 * 1024
"""Distinct frames held at once, per stream, in bytes: 32 VGA frames are 29 MB, but 32
distinct 1080p ones would be 199 MB, too much for a Raspberry Pi."""

TrackKey = tuple[str, int]  # detector slot, track id


@dataclass(slots=True)
class Held:
    image: Image
    box: Box
    score: float
    ts: float


class TrackSnapshots:
    """Per video stream; called on the post thread only."""

    def __init__(
        self,
        stream: str,
        encoder: SnapshotEncoder,
        max_held: int = MAX_HELD,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self.stream = stream
        self._submit = encoder.submit
        self.counters: SnapshotCounters = encoder.counters
        kinds = encoder.kinds
        self.start_kinds: tuple[SnapshotKind, ...] = tuple(
            k for k in ("start", "start_crop") if k in kinds
        )
        self.best_kinds: tuple[SnapshotKind, ...] = tuple(
            k for k in ("best", "best_crop") if k in kinds
        )
        self.max_held = max_held
        self.max_held_bytes = max_held_bytes
        self.held: dict[TrackKey, Held] = {}
        self._unheld: set[TrackKey] = set()  # started while max_held tracks held a frame
        self._pending: list[SnapshotJob] = []

    def started(self, key: TrackKey, event: Event, image: Image | None) -> None:
        if image is None or event.box is None:  # cannot happen for a vision start
            self.counters.drop("no_frame", len(self.start_kinds) + len(self.best_kinds))
            return
        if self.best_kinds:
            if len(self.held) < self.max_held and self._fits(image, None):
                self.held[key] = Held(image, event.box, event.score, event.ts)
            else:
                self._unheld.add(key)
        if self.start_kinds:
            self._queue(event, self.start_kinds, image, event.box, event.ts)

    def seen(self, key: TrackKey, score: float, box: Box, ts: float, image: Image) -> None:
        """A frame that matched the track: kept if it scores higher than the best so far."""
        h = self.held.get(key)
        if h is not None and score > h.score and self._fits(image, h):
            h.image, h.box, h.score, h.ts = image, box, score, ts

    def held_bytes(self) -> int:
        """Bytes of the distinct frames held now."""
        return sum({id(h.image): h.image.nbytes for h in self.held.values()}.values())

    def _fits(self, image: Image, instead_of: Held | None) -> bool:
        """Whether holding ``image`` (in place of ``instead_of``'s frame) stays in bounds."""
        frames = {id(h.image): h.image.nbytes for h in self.held.values() if h is not instead_of}
        frames[id(image)] = image.nbytes
        return sum(frames.values()) <= self.max_held_bytes

    def ended(self, key: TrackKey, event: Event) -> None:
        h = self.held.pop(key, None)
        if not self.best_kinds:
            return
        if h is None:
            unheld = key in self._unheld
            self._unheld.discard(key)
            self.counters.drop("held_full" if unheld else "no_frame", len(self.best_kinds))
            return
        self._queue(event, self.best_kinds, h.image, h.box, h.ts)

    def keep_only(self, slot: str, live: set[int]) -> None:
        """Forget tracks of ``slot`` the tracker no longer has (never ended: a bound)."""
        for key in [k for k in self.held if k[0] == slot and k[1] not in live]:
            del self.held[key]
        self._unheld = {k for k in self._unheld if k[0] != slot or k[1] in live}

    def release(self) -> None:
        """The post step's events went to the sinks: their pictures may follow."""
        for job in self._pending:
            job.released.set()
        self._pending.clear()

    def _queue(
        self, event: Event, kinds: tuple[SnapshotKind, ...], image: Image, box: Box, ts: float
    ) -> None:
        job = SnapshotJob(event.id, self.stream, kinds, ts, image, box)
        if self._submit(job):
            event.snapshots = kinds
            self._pending.append(job)
