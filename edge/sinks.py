"""Event sinks chosen by config: ``SINKS`` maps a ``[[sinks]] type`` to a factory.

A factory gets its ``SinkConfig`` and the ``DaemonContext`` (device id, boot id,
the whole config with its ``[sync]`` section, the data dir, the daemon's
control interface), so a sink that lives elsewhere (the MQTT outbox in
``cloud_sync``) plugs in with one entry.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from edge.config import DeviceConfig, JsonlSinkConfig, SinkConfig, StdoutSinkConfig
from edge.control import DeviceControl, ReplyRoute
from edge.errors import ConfigError
from edge.events import Event, EventSink
from edge.snapshots import Snapshot, SnapshotSink
from edge.supervise import ComponentHealth

log = logging.getLogger(__name__)

# the same error from the same sink is logged at most once per this many seconds
ERROR_LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class DaemonContext:
    device_id: str
    boot_id: str
    config: DeviceConfig
    data_dir: Path
    control: DeviceControl | None = None
    # where command replies go: the daemon's one route, re-pointed by whichever MQTT
    # sink is live, so a reply outlives a reload that replaced the sink it came in on
    replies: ReplyRoute | None = None


def _line(event: Event, ctx: DaemonContext) -> str:
    return event.encode(ctx.device_id, ctx.boot_id)  # the one serialisation (edge.events)


class JsonLinesSink:
    """One JSON object per event on a text stream; ``flush_every`` events per flush.

    ``jsonl`` appends to a file it owns; ``stdout`` writes to standard output (logs go
    to stderr) and leaves it open.
    """

    def __init__(
        self, stream: IO[str], ctx: DaemonContext, flush_every: int = 1, *, owns: bool = False
    ) -> None:
        self._f = stream
        self._ctx = ctx
        self._every = flush_every
        self._owns = owns
        self._n = 0
        self._lock = threading.Lock()
        self.write_errors = 0
        self._last_error: str | None = None  # None while the last write succeeded

    @classmethod
    def open(cls, path: Path, ctx: DaemonContext, flush_every: int = 1) -> JsonLinesSink:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: jsonl sink cannot open the file ({exc.strerror})") from None
        return cls(stream, ctx, flush_every, owns=True)

    def emit(self, event: Event) -> None:
        self.emit_many((event,))

    def emit_many(self, events: Sequence[Event]) -> None:
        with self._lock:
            try:
                for event in events:
                    self._f.write(_line(event, self._ctx) + "\n")
                    self._n += 1
                    if self._n % self._every == 0:
                        self._f.flush()
            except (OSError, ValueError) as exc:  # ValueError: the stream was closed
                self._failed(exc)
                raise
            self._last_error = None

    def flush(self) -> None:
        with self._lock:
            try:
                self._f.flush()
            except (OSError, ValueError) as exc:
                self._failed(exc)
                raise

    def _failed(self, exc: Exception) -> None:
        self.write_errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"

    def health(self) -> list[ComponentHealth]:
        name = f"jsonl:{getattr(self._f, 'name', '?')}"
        err = self._last_error
        if err is None:
            return [ComponentHealth(name, True)]
        return [ComponentHealth(name, False, f"write failed ({self.write_errors} so far): {err}")]

    def close(self) -> None:
        with self._lock:
            if self._f.closed:
                return
            self._f.flush()
            if self._owns:
                self._f.close()

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonl(cfg: SinkConfig, ctx: DaemonContext) -> EventSink:
    assert isinstance(cfg, JsonlSinkConfig)  # SINKS maps "jsonl" here
    return JsonLinesSink.open(cfg.path.expanduser(), ctx, cfg.flush_every)


def _stdout(cfg: SinkConfig, ctx: DaemonContext) -> EventSink:
    assert isinstance(cfg, StdoutSinkConfig)  # SINKS maps "stdout" here
    return JsonLinesSink(sys.stdout, ctx, cfg.flush_every)


SinkFactory = Callable[[SinkConfig, DaemonContext], EventSink]

SINKS: dict[str, str] = {
    "jsonl": "edge.sinks:_jsonl",
    "stdout": "edge.sinks:_stdout",
    # the `sync` extra (paho-mqtt): imported by name, on use, so that `edge` never imports
    # `cloud_sync` (the layer contract in pyproject.toml, checked by tests/unit/test_layers.py)
    "mqtt": "cloud_sync.sink:from_daemon",
}
"""``[[sinks]] type`` → ``"module:factory"``, imported when a sink of that type is built."""


def sink_factory(kind: str) -> SinkFactory:
    """The factory registered for ``kind``; ``ConfigError`` if it is unknown or not installed."""
    target = SINKS.get(kind)
    if target is None:
        raise ConfigError(f"sinks: unknown sink type {kind!r}; choose one of {sorted(SINKS)}")
    import importlib  # here, not at the top: only building a sink needs it

    module, _, attr = target.partition(":")
    try:
        factory: SinkFactory = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if module.split(".")[0] == "edge" and exc.name and exc.name.startswith("edge"):
            raise
        raise ConfigError(
            f"sinks: the {kind} sink needs {exc.name}, which is not installed; "
            "install edgewise[sync]"
        ) from None
    return factory


def build_sink(cfg: SinkConfig, ctx: DaemonContext) -> EventSink:
    return sink_factory(cfg.type)(cfg, ctx)


def sink_names(cfgs: Sequence[SinkConfig]) -> list[str]:
    """A stable name per configured sink for health and metric labels: its type, with
    ``#2``, ``#3`` … for a second and third sink of one type."""
    seen: dict[str, int] = {}
    names = []
    for c in cfgs:
        seen[c.type] = seen.get(c.type, 0) + 1
        names.append(c.type if seen[c.type] == 1 else f"{c.type}#{seen[c.type]}")
    return names


@dataclass(slots=True)
class SinkStats:
    """One sink's failures over the process's life (kept across reloads: counters only grow)."""

    failures: int = 0  # calls into the sink that raised
    lost: int = 0  # events a sink failed on or refused
    snapshots_lost: int = 0  # snapshots whose emit_snapshot raised
    last_error: str | None = None
    failing: bool = False  # the last call into the sink failed
    snapshot_failing: bool = False  # the last emit_snapshot into it failed
    _logged: dict[str, float] = field(default_factory=dict)  # error text -> when logged

    def should_log(self, error: str, now: float) -> bool:
        last = self._logged.get(error)
        if last is not None and now - last < ERROR_LOG_EVERY_S:
            return False
        if len(self._logged) > 32:  # distinct errors are few; bound it anyway
            self._logged.clear()
        self._logged[error] = now
        return True


class SinkFanout:
    """Every event to every sink; a failing sink does not stop the others.

    A failure is counted (``failures``, and the events of that call as ``lost``),
    logged once per distinct error per minute, and turns that sink's health red
    until a later call into it succeeds.

    Snapshots (``emit_snapshot``, from the snapshot encoder's thread) go to the sinks that
    implement ``edge.snapshots.SnapshotSink``, with the same failure handling (counted in
    ``snapshots_lost``); ``takes_snapshots`` says whether any does, and so whether the
    pipeline takes snapshots at all.
    """

    def __init__(
        self, sinks: Sequence[tuple[str, EventSink]], stats: dict[str, SinkStats] | None = None
    ) -> None:
        self.named = list(sinks)
        self.sinks = [s for _, s in self.named]
        self.stats = stats if stats is not None else {}
        for name, _ in self.named:
            self.stats.setdefault(name, SinkStats())
        self.emitted = 0
        self.snapshot_sinks = [(n, s) for n, s in self.named if isinstance(s, SnapshotSink)]
        self._fail_lock = threading.Lock()  # failures come from post and encoder threads

    @property
    def takes_snapshots(self) -> bool:
        return bool(self.snapshot_sinks)

    def emit_snapshot(self, snapshot: Snapshot) -> None:
        """To every snapshot sink; never raises (the encoder's thread calls it)."""
        for name, s in self.snapshot_sinks:
            try:
                s.emit_snapshot(snapshot)
            except Exception as exc:  # a sink's own failure must not stop the encoder
                self._failed(name, "snapshot", exc, 0, snapshot=True)
                continue
            self.stats[name].snapshot_failing = False

    def emit_many(self, events: Sequence[Event]) -> None:
        """One call per sink: the outbox commits a frame's events in one transaction."""
        self.emitted += len(events)
        for name, s in self.named:
            st = self.stats[name]
            try:
                kept = s.emit_many(events)
            except Exception as exc:  # a sink's own failure must not stop the pipeline
                self._failed(name, "write", exc, len(events))
                continue
            st.failing = False
            if isinstance(kept, int) and 0 <= kept < len(events):
                st.lost += len(events) - kept  # refused (a full outbox set to reject_new)

    def flush(self) -> None:
        for name, s in self.named:
            try:
                s.flush()
            except Exception as exc:  # as above
                self._failed(name, "flush", exc, 0)

    def close(self) -> None:
        for name, s in self.named:
            try:
                s.close()
            except Exception as exc:  # as above
                self._failed(name, "close", exc, 0)

    def _failed(
        self, name: str, what: str, exc: Exception, lost: int, *, snapshot: bool = False
    ) -> None:
        st = self.stats[name]
        with self._fail_lock:
            st.failures += 1
            st.lost += lost
            if snapshot:
                st.snapshots_lost += 1
                st.snapshot_failing = True
            else:
                st.failing = True
            st.last_error = f"{type(exc).__name__}: {exc}"
            should = st.should_log(f"{what}|{st.last_error}", time.monotonic())
        if should:
            log.error(
                "sink %s: %s failed: %s (%d failure(s), %d event(s) lost so far; "
                "the same error is logged at most once a minute)",
                name, what, st.last_error, st.failures, st.lost,
            )  # fmt: skip

    def health(self) -> list[ComponentHealth]:
        """Per sink: ``sink.<name>`` (did the last call into it succeed), then what the sink
        reports about itself (its threads, its file)."""
        out: list[ComponentHealth] = []
        for name, s in self.named:
            st = self.stats[name]
            reason = (
                f"{st.failures} failure(s), {st.lost} event(s) lost"
                + (f", {st.snapshots_lost} snapshot(s) lost" if st.snapshots_lost else "")
                + f"; last: {st.last_error}"
                if st.failures
                else None
            )
            ok = not (st.failing or st.snapshot_failing)
            out.append(ComponentHealth(f"sink.{name}", ok, reason))
            try:
                out.extend(s.health())
            except Exception as exc:  # a health probe that fails is itself a bad sign
                out.append(
                    ComponentHealth(f"sink.{name}.health", False, f"health() raised {exc!r}")
                )
        return out
