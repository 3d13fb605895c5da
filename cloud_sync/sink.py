"""``MqttSink``: the daemon's EventSink for ``type = "mqtt"``: outbox + publisher + commands.

``emit`` returns once the event is committed to the outbox (fsynced); the
publisher delivers it later, across outages and restarts. ``emit_many`` commits
a group of events (one frame's worth) in one transaction: one fsync for all.
With ``[homeassistant]`` on, committed events also drive the Home Assistant entities
(``cloud_sync.ha``), announced over the publisher's connection.

A commit that fails raises ``OutboxError`` (counted in the outbox's stats and
shown by ``health()``); the daemon's fanout counts it per sink.

It is also an ``edge.snapshots.SnapshotSink``: ``emit_snapshot`` commits the picture to
the snapshot store (``cloud_sync.outbox.snapshots``, its own file in the data dir) and
returns; the publisher sends it once no event is waiting. It never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import edge
from cloud_sync.commands import CommandHandler, CommandWorker
from cloud_sync.ha import HomeAssistant
from cloud_sync.ha import store as ha_store
from cloud_sync.outbox import Outbox
from cloud_sync.outbox.snapshots import SnapshotStore
from cloud_sync.publisher import Publisher
from cloud_sync.schema import reply_topic, topic
from cloud_sync.telemetry import Telemetry
from edge.config import DeviceConfig, SyncConfig
from edge.control import DeviceControl, ReplyRoute
from edge.errors import ConfigError
from edge.events import Event, uuid7
from edge.snapshots import Snapshot
from edge.supervise import ComponentHealth

if TYPE_CHECKING:
    from edge.config import SinkConfig
    from edge.sinks import DaemonContext

log = logging.getLogger(__name__)


class MqttSink:
    def __init__(
        self,
        cfg: SyncConfig,
        device_id: str,
        data_dir: Path,
        control: DeviceControl | None = None,
        *,
        boot_id: str | None = None,
        version: str | None = None,
        replies: ReplyRoute | None = None,
        device: DeviceConfig | None = None,
    ) -> None:
        self.cfg = cfg
        self.device_id = device_id
        self.boot_id = boot_id or uuid7()
        self.control = control
        path = cfg.outbox.path if cfg.outbox.path.is_absolute() else data_dir / cfg.outbox.path
        self.outbox = Outbox(
            path,
            device_id,
            self.boot_id,
            max_bytes=cfg.outbox.max_bytes,
            when_full=cfg.outbox.when_full,
            state_path=data_dir / "state.json",
        )
        # in the data dir, always: the daemon's lock on it covers this file (config checks)
        self.snapshots = SnapshotStore(
            data_dir / cfg.outbox.snapshot_path, device_id, max_bytes=cfg.outbox.snapshot_max_bytes
        )
        self._telemetry = Telemetry(device_id, self.boot_id)
        self.commands: CommandWorker | None = None
        if control is not None:
            handler = CommandHandler(
                control,
                data_dir,
                public_key=cfg.model_public_key,
                download_timeout_s=cfg.model_download_timeout_s,
                download_min_bytes_per_s=cfg.model_download_min_bytes_per_s,
            )
            # replies go through the daemon's route (to whichever sink is live after a
            # reload this very command may cause), else through this sink
            self.commands = CommandWorker(handler, replies.send if replies else self._try_reply)
        self._replies = replies
        self._data_dir = data_dir
        self._version = version
        self.homeassistant = homeassistant_for(device, cfg, data_dir, version)
        self.publisher = Publisher(
            cfg,
            device_id,
            self.outbox,
            telemetry=self._telemetry_payload,
            on_command=self.commands.submit if self.commands else None,
            version=version,
            snapshots=self.snapshots,
            companions=[self.homeassistant] if self.homeassistant else (),
        )
        if self.commands:
            self.commands.start()
        self.publisher.start()
        if replies is not None:
            replies.attach(self._try_reply)
        self._closed = False

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: Sequence[Event]) -> int:
        """Commit ``events`` in one transaction; returns how many the outbox kept. Home
        Assistant's states follow them (all of them: what the device sees, whether or not
        the outbox kept every one)."""
        try:
            return self.outbox.append(events)
        finally:  # a failed commit raises to the daemon; the entities follow all the same
            if self.homeassistant is not None:
                self.homeassistant.observe(events)

    def reconfigure(self, device: DeviceConfig) -> None:
        """The daemon reloaded a config that keeps this sink: Home Assistant's entities
        follow the new streams, labels and zones (gone ones are removed)."""
        if self.homeassistant is not None:
            self.homeassistant.reconfigure(device)
            return
        self.homeassistant = homeassistant_for(device, self.cfg, self._data_dir, self._version)
        if self.homeassistant is not None:  # turned on by this reload
            self.publisher.add_companion(self.homeassistant)

    def emit_snapshot(self, snapshot: Snapshot) -> None:
        """Commit ``snapshot`` (fsynced on return); refused, dropped and lost ones are counted
        in ``snapshots.stats()`` and telemetry, never raised."""
        self.snapshots.put(snapshot)

    def flush(self) -> None:
        """Nothing to do: every emitted event is already committed."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._replies is not None:
            self._replies.detach(self._try_reply)
        self.publisher.stop()
        if self.homeassistant is not None:
            self.homeassistant.close()
        if self.commands:
            self.commands.stop()
        self.outbox.close()
        self.snapshots.close()

    def __enter__(self) -> MqttSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> list[ComponentHealth]:
        """The publisher's threads and broker link, whether the outbox takes appends, and
        the command worker."""
        out = [*self.publisher.health(), self.outbox.health(), self.snapshots.health()]
        if self.homeassistant is not None:
            out += self.homeassistant.health()
        return out + (self.commands.health() if self.commands else [])

    def _try_reply(self, name: str, payload: bytes) -> bool:
        # queued until the broker has it (PUBACK), across reconnects; False only once this
        # sink is closing, so the daemon's route hands it to the sink that replaced it
        return self.publisher.publish_reply(
            reply_topic(self.cfg.prefix, self.device_id, name), payload
        )

    def _telemetry_payload(self) -> bytes | None:
        """Never raises (it runs on the publisher's sender thread): see cloud_sync.telemetry."""
        stats = self.control.stats if self.control is not None else None
        return self._telemetry.payload(
            stats, self.outbox.stats, self.publisher.reconnects, self.snapshots.stats
        )


def homeassistant_for(
    device: DeviceConfig | None, cfg: SyncConfig, data_dir: Path, version: str | None
) -> HomeAssistant | None:
    """The Home Assistant companion: when enabled, and also when disabled while the data
    folder still lists announced entities (they are removed, then the list is empty)."""
    if device is None:
        return None
    if not device.homeassistant.enabled and not ha_store.load(data_dir / ha_store.FILE_NAME):
        return None  # off: nothing is published under the discovery prefix
    status = topic(cfg.prefix, device.device_id, "status")
    return HomeAssistant(device, status, data_dir, version or edge.__version__)


def from_daemon(cfg: SinkConfig, ctx: DaemonContext) -> MqttSink:
    """The ``"mqtt"`` entry of ``edge.sinks.SINKS``: the ``[sync]`` section says where to."""
    if ctx.config.sync is None:
        raise ConfigError("sinks: an mqtt sink needs a [sync] section in the device config")
    return MqttSink(
        ctx.config.sync, ctx.device_id, ctx.data_dir, ctx.control, boot_id=ctx.boot_id,
        replies=ctx.replies, device=ctx.config,
    )  # fmt: skip
