"""Event sinks chosen by config: ``SINKS`` maps a ``[[sinks]] type`` to a factory.

A factory gets its ``SinkConfig`` and the ``DaemonContext`` (device id, boot id,
the whole config with its ``[sync]`` section, the data dir, the daemon's
control interface), so a sink that lives elsewhere (the MQTT outbox in
``cloud_sync``) plugs in with one entry.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edge.config import DeviceConfig, JsonlSinkConfig, SinkConfig, StdoutSinkConfig
from edge.control import DeviceControl
from edge.errors import ConfigError
from edge.events import Event, EventSink


@dataclass(frozen=True, slots=True)
class DaemonContext:
    device_id: str
    boot_id: str
    config: DeviceConfig
    data_dir: Path
    control: DeviceControl | None = None


def _line(event: Event, ctx: DaemonContext) -> str:
    doc: dict[str, Any] = {"device_id": ctx.device_id, "boot_id": ctx.boot_id, **event.to_json()}
    return json.dumps(doc, separators=(",", ":"))


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
            for event in events:
                self._f.write(_line(event, self._ctx) + "\n")
                self._n += 1
                if self._n % self._every == 0:
                    self._f.flush()

    def flush(self) -> None:
        with self._lock:
            self._f.flush()

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


class SinkFanout:
    """Every event to every sink; one failing sink is logged and does not stop the others."""

    def __init__(
        self, sinks: list[EventSink], on_error: Callable[[EventSink, Exception], None]
    ) -> None:
        self.sinks = sinks
        self._on_error = on_error
        self.emitted = 0

    def emit_many(self, events: Sequence[Event]) -> None:
        """One call per sink: the outbox commits a frame's events in one transaction."""
        self.emitted += len(events)
        for s in self.sinks:
            try:
                s.emit_many(events)
            except Exception as exc:  # a sink's own failure must not stop the pipeline
                self._on_error(s, exc)

    def flush(self) -> None:
        for s in self.sinks:
            try:
                s.flush()
            except Exception as exc:  # as above
                self._on_error(s, exc)

    def close(self) -> None:
        for s in self.sinks:
            try:
                s.close()
            except Exception as exc:  # as above
                self._on_error(s, exc)
