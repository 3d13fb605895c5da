"""``HomeAssistant``: announces a device's entities over the publisher's connection and
keeps their states, from the events the mqtt sink commits.

It is a *companion* of ``cloud_sync.publisher.Publisher`` (see ``Companion`` there): on
every accepted connection the publisher hands it a retained QoS 1 ``publish`` bound to
that connection, and routes to it the messages on the topics it subscribes to (Home
Assistant's birth message on ``<discovery_prefix>/status``).

Nothing is queued: this object holds what Home Assistant should see (each entity's
config and its current state) and, on every (re)connect and every birth ``online``,
publishes all of it again, retained. A state change while the broker is away is not lost,
the next connection sends the current value; between connections a state is published
when it changes only.

States: a binary sensor (stream, label) is ``ON`` while at least one track of that label
is open on that stream (a ``start`` opens it, its ``end`` closes it, by ``track_id``); a
zone sensor is the number of objects inside (``enter`` / ``exit``; an ``end`` also takes
the track out). Removal: an entity no longer in the config gets an empty retained config
(and an empty state, clearing its retained value); it is kept in the store
(``cloud_sync.ha.store``) until the broker acknowledged that removal, across restarts.

Every discovery config is checked against Home Assistant's documented fields
(``cloud_sync.ha.discovery``) before it is published; one that fails is logged, counted
and not announced.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from cloud_sync.ha import store
from cloud_sync.ha.discovery import check_config
from cloud_sync.ha.entities import OFF, ON, Entity, StateKey, build_entities
from edge.config import DeviceConfig
from edge.events import Event
from edge.supervise import ComponentHealth

log = logging.getLogger(__name__)


class Sent(Protocol):
    """What a publish returns (paho's ``MQTTMessageInfo``)."""

    def is_published(self) -> bool: ...


Publish = Callable[[str, bytes], Sent]
"""A retained QoS 1 publish on one connection."""

TrackKey = tuple[str, float | int]
SAVE_RETRY_S = 30.0
"""A store that could not be written is tried again on an event after this long."""


def _acked(sent: Sent) -> bool:
    try:
        return sent.is_published()
    except (RuntimeError, ValueError):  # paho: published on a connection that was gone
        return False


class HomeAssistant:
    """One device's Home Assistant entities; thread-safe (events come from the daemon's
    emit path, connects and birth messages from the publisher's network thread)."""

    def __init__(self, cfg: DeviceConfig, status_topic: str, data_dir: Path, version: str):
        self._status_topic = status_topic
        self._version = version
        self._path = data_dir / store.FILE_NAME
        self._lock = threading.Lock()
        self._publish: Publish | None = None
        self._entities: dict[str, Entity] = {}  # config topic -> entity
        self._by_key: dict[StateKey, Entity] = {}
        self._open: dict[StateKey, set[TrackKey]] = {}  # tracks open / inside, per entity
        self._sent: dict[str, bytes] = {}  # state topic -> last value published
        self._retiring: store.Announced = store.load(self._path)  # until their removal acks
        self._removals: dict[str, Sent] = {}
        self._saved: store.Announced | None = None
        self.birth_topic = ""
        self.invalid_configs = 0
        self.announcements = 0
        self.save_errors = 0
        self.errors = 0
        self.last_error: str | None = None
        self._save_error: str | None = None
        self._retry_at = 0.0
        self._apply(cfg)

    # --- the Companion protocol (publisher) ----------------------------------------------

    def subscriptions(self) -> Sequence[str]:
        return [self.birth_topic]

    def connected(self, publish: Publish) -> None:
        with self._lock:
            self._publish = publish
            self._announce()

    def message(self, topic: str, payload: bytes) -> None:
        """Home Assistant's birth (``online``) re-announces everything; ``offline`` and
        anything else is ignored."""
        if topic != self.birth_topic or payload.strip() != b"online":
            return
        log.info("homeassistant: Home Assistant came online; announcing again")
        with self._lock:
            self._announce()

    # --- from the sink ------------------------------------------------------------------

    def reconfigure(self, cfg: DeviceConfig) -> None:
        """A reloaded config on the same sink: new entities announced, gone ones removed."""
        with self._lock:
            self._apply(cfg)
            self._announce()

    def observe(self, events: Iterable[Event]) -> None:
        """Follow committed events; publish the states that changed. Never raises: the
        events are committed already, and Home Assistant must not fail the sink (a failure
        is logged, counted and shown by ``health``; the next connect sends every state)."""
        with self._lock:
            try:
                changed: set[StateKey] = set()
                for e in events:
                    changed |= self._follow(e)
                for key in changed:
                    ent = self._by_key.get(key)
                    if ent is not None:
                        self._send_state(ent)
                self._confirm()
                if self._save_error is not None and time.monotonic() >= self._retry_at:
                    self._save()
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.errors == 1 or self.errors % 100 == 0:
                    log.error("homeassistant: following events failed (%d so far)",
                              self.errors, exc_info=exc)  # fmt: skip

    def close(self) -> None:
        """After the publisher stopped: removals the broker acknowledged leave the store."""
        with self._lock:
            self._confirm()
            self._publish = None

    def health(self) -> list[ComponentHealth]:
        notes = []
        if self.invalid_configs:
            notes.append(f"{self.invalid_configs} discovery config(s) refused (see the log)")
        if self._save_error:
            notes.append(f"cannot write {self._path}: {self._save_error}")
        if self.errors:
            notes.append(f"{self.errors} error(s) following events; last: {self.last_error}")
        return [ComponentHealth("homeassistant", self._save_error is None,
                                "; ".join(notes) or None)]  # fmt: skip

    def state_of(self, key: StateKey) -> bytes | None:
        """The current state of one entity (tests)."""
        with self._lock:
            ent = self._by_key.get(key)
            return self._value(ent) if ent else None

    # --- inside the lock ----------------------------------------------------------------

    def _apply(self, cfg: DeviceConfig) -> None:
        self.birth_topic = f"{cfg.homeassistant.discovery_prefix}/status"
        entities: dict[str, Entity] = {}
        if cfg.homeassistant.enabled:
            for ent in build_entities(cfg, self._status_topic, self._version):
                problems = check_config(cfg.homeassistant.discovery_prefix, ent.config_topic,
                                        ent.config)  # fmt: skip
                if problems:
                    self.invalid_configs += 1
                    log.error("homeassistant: not announcing %s: %s", ent.config_topic,
                              "; ".join(problems))  # fmt: skip
                    continue
                entities[ent.config_topic] = ent
        for ct, ent in self._entities.items():
            if ct not in entities:
                self._retiring[ct] = ent.state_topic
        for ct in entities:
            self._retiring.pop(ct, None)
            self._removals.pop(ct, None)
        self._entities = entities
        self._by_key = {e.key: e for e in entities.values()}
        self._open = {k: self._open.get(k, set()) for k in self._by_key}
        self._save()

    def _announce(self) -> None:
        publish = self._publish
        if publish is None:
            return
        for ct, st in self._retiring.items():
            self._removals[ct] = publish(ct, b"")
            publish(st, b"")  # the retained state goes too
            self._sent.pop(st, None)
        for ct, ent in self._entities.items():
            publish(ct, json.dumps(ent.config, separators=(",", ":")).encode())
            self._sent.pop(ent.state_topic, None)
            self._send_state(ent)
        self.announcements += 1
        if self._retiring:
            log.info("homeassistant: removing %d entit(y/ies) gone from the config",
                     len(self._retiring))  # fmt: skip

    def _value(self, ent: Entity) -> bytes:
        n = len(self._open.get(ent.key, ()))
        if ent.component == "binary_sensor":
            return ON if n else OFF
        return str(n).encode()

    def _send_state(self, ent: Entity) -> None:
        value = self._value(ent)
        if self._publish is None or self._sent.get(ent.state_topic) == value:
            return
        self._publish(ent.state_topic, value)
        self._sent[ent.state_topic] = value

    def _follow(self, e: Event) -> set[StateKey]:
        track: TrackKey = (e.stream, e.track_id if e.track_id is not None else e.started_at)
        changed: set[StateKey] = set()

        def put(key: StateKey, inside: bool) -> None:
            members = self._open.get(key)
            if members is None:
                return  # not announced
            before = len(members)
            if inside:
                members.add(track)
            else:
                members.discard(track)
            if len(members) != before:
                changed.add(key)

        if e.phase in ("start", "update"):
            put(("label", e.stream, e.label), True)
        elif e.phase == "end":
            put(("label", e.stream, e.label), False)
            for key in [k for k in self._open if k[0] == "zone" and k[1] == e.stream]:
                put(key, False)
        elif e.phase in ("enter", "exit") and e.zone is not None:
            put(("zone", e.stream, e.zone), e.phase == "enter")
        return changed

    def _confirm(self) -> None:
        done = [ct for ct, sent in self._removals.items() if _acked(sent)]
        for ct in done:
            del self._removals[ct]
            self._retiring.pop(ct, None)
        if done:
            self._save()

    def _save(self) -> None:
        want = {ct: e.state_topic for ct, e in self._entities.items()} | self._retiring
        if want == self._saved:
            return
        if not want and self._saved is None and not self._path.exists():
            self._saved = want
            return  # never enabled here: no file
        try:
            store.save(self._path, want)
        except OSError as exc:  # retried on the next change; health says so meanwhile
            self.save_errors += 1
            self._save_error = f"{type(exc).__name__}: {exc}"
            self._retry_at = time.monotonic() + SAVE_RETRY_S
            log.error("homeassistant: cannot write %s: %s", self._path, exc)
            return
        self._saved = want
        self._save_error = None
