"""Home Assistant through MQTT discovery, against a real mosquitto: the mqtt sink with
``homeassistant`` on announces its entities retained, every config checked against Home
Assistant's documented fields by a stand-in subscriber (tests/support/ha_sub.py); states
follow start / end and enter / exit; Home Assistant's birth re-announces; an entity gone
from the config is removed with an empty retained config, also across a restart."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.ha import store
from cloud_sync.sink import MqttSink
from edge.config import DeviceConfig, parse_config
from edge.events import Event, ModelRef
from tests.support.ha_sub import HomeAssistantSim
from tests.support.mosquitto import Broker, start_broker

MODEL = ModelRef("nanodet-m", "1", "0" * 64)
PFX = "homeassistant"


def config(
    data: Path,
    port: int,
    *,
    ha: str = "homeassistant = true\n",
    labels: str = '["person", "car"]',
    zones: tuple[str, ...] = ("driveway", "porch"),
    device_id: str = "cam-1",
) -> DeviceConfig:
    zone_tables = "".join(
        f'[[streams.zones]]\nname = "{z}"\npoints = [[0, 0], [1, 0], [1, 1]]\n' for z in zones
    )
    text = f"""\
device_id = "{device_id}"
data_dir = "{data}"
{ha}
[[streams]]
name = "front-door"
source = "door.avi"
detectors = ["objects"]
{zone_tables}
[detectors.objects]
model = "nanodet-m"
labels = {labels}

[[sinks]]
type = "mqtt"

[sync]
port = {port}
reconnect_min_s = 0.1
reconnect_max_s = 0.3
delivery = "broker"
"""
    return parse_config(text, "device.toml")


def sink_for(cfg: DeviceConfig) -> MqttSink:
    assert cfg.sync is not None
    return MqttSink(cfg.sync, cfg.device_id, cfg.data_dir, device=cfg)


def ev(phase: str, track: int, label: str = "person", zone: str | None = None) -> Event:
    now = time.time()
    return Event(
        "front-door",
        "vision",
        label,
        0.9,
        phase,
        now - 1,
        now,
        MODEL,  # type: ignore[arg-type]
        track_id=track,
        zone=zone,
    )


def topic(component: str, obj: str, leaf: str = "config") -> str:
    return f"{PFX}/{component}/cam-1/{obj}/{leaf}"


PERSON = topic("binary_sensor", "front-door_person")
CAR = topic("binary_sensor", "front-door_car")
DRIVEWAY = topic("sensor", "front-door_zone_driveway")
PORCH = topic("sensor", "front-door_zone_porch")
ALL = {PERSON, CAR, DRIVEWAY, PORCH}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with start_broker(tmp_path / "broker", persistence=False) as b:
        yield b


@pytest.fixture
def ha(broker: Broker) -> Iterator[HomeAssistantSim]:
    sim = HomeAssistantSim(broker.port)
    yield sim
    sim.close()


def announced(ha: HomeAssistantSim, topics: set[str]) -> bool:
    return set(ha.configs()) == topics and all(ha.state(t) is not None for t in topics)


def test_announces_checked_configs_and_states_follow_events(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    with sink_for(config(tmp_path / "data", broker.port)) as sink:
        assert ha.wait(lambda: announced(ha, ALL)), ha.configs().keys()
        assert ha.audit() == []
        person = ha.configs()[PERSON]
        assert person["name"] == "person detected at front-door"
        assert person["device"]["identifiers"] == ["edgewise_cam-1"]
        assert person["availability"][0]["topic"] == "edgewise/v1/cam-1/status"
        assert ha.state(PERSON) == b"OFF" and ha.state(DRIVEWAY) == b"0"
        st = person["state_topic"]
        zt = ha.configs()[DRIVEWAY]["state_topic"]
        # two people: ON at the first start, OFF only when the last one ended
        sink.emit_many([ev("start", 1)])
        assert ha.wait(lambda: ha.state(PERSON) == b"ON")
        sink.emit_many([ev("start", 2), ev("update", 1), ev("update", 2)])
        sink.emit_many([ev("end", 1)])
        time.sleep(0.3)
        assert ha.state(PERSON) == b"ON"
        sink.emit_many([ev("end", 2)])
        assert ha.wait(lambda: ha.state(PERSON) == b"OFF")
        assert ha.values(st) == [b"OFF", b"ON", b"OFF"]  # on change only
        # zone counts by enter / exit; an end takes its track out of every zone
        sink.emit_many([ev("start", 3), ev("enter", 3, zone="driveway")])
        sink.emit_many([ev("start", 4, "car"), ev("enter", 4, "car", zone="driveway")])
        assert ha.wait(lambda: ha.state(DRIVEWAY) == b"2")
        sink.emit_many([ev("exit", 3, zone="driveway")])
        assert ha.wait(lambda: ha.state(DRIVEWAY) == b"1")
        sink.emit_many([ev("end", 4, "car")])
        assert ha.wait(lambda: ha.state(DRIVEWAY) == b"0")
        assert ha.values(zt) == [b"0", b"1", b"2", b"1", b"0"]
        assert ha.wait(lambda: ha.state(CAR) == b"OFF")
        # a label nobody announced changes nothing
        n = len(ha.messages)
        sink.emit_many([ev("start", 9, "dog")])
        time.sleep(0.3)
        assert len(ha.messages) == n
    # a clean stop: the status says stopped, which Home Assistant reads as unavailable
    assert ha.wait(
        lambda: json.loads(ha.retained["edgewise/v1/cam-1/status"])["state"] == "stopped"
    )
    assert ha.audit() == []


def test_birth_message_reannounces_configs_and_current_states(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    with sink_for(config(tmp_path / "data", broker.port)) as sink:
        assert ha.wait(lambda: announced(ha, ALL))
        sink.emit_many([ev("start", 1)])
        assert ha.wait(lambda: ha.state(PERSON) == b"ON")
        before = {t: ha.count(t) for t in ALL}
        ha.birth(b"offline")  # Home Assistant's will: nothing to do
        time.sleep(0.3)
        assert {t: ha.count(t) for t in ALL} == before
        ha.birth()
        assert ha.wait(lambda: all(ha.count(t) == before[t] + 1 for t in ALL))
        st = ha.configs()[PERSON]["state_topic"]
        assert ha.wait(lambda: ha.values(st)[-1] == b"ON" and len(ha.values(st)) == 3)
        assert ha.audit() == []


def test_reconnect_reannounces(tmp_path: Path, broker: Broker) -> None:
    with sink_for(config(tmp_path / "data", broker.port)) as sink:
        assert sink.publisher.connected.wait(10)
        broker.restart()  # no persistence: every retained message is gone
        ha = HomeAssistantSim(broker.port)
        try:
            assert ha.wait(lambda: announced(ha, ALL), 15)
            assert ha.audit() == []
        finally:
            ha.close()


def test_removed_label_and_zone_get_empty_retained_configs_across_a_restart(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    data = tmp_path / "data"
    with sink_for(config(data, broker.port)) as sink:
        assert ha.wait(lambda: announced(ha, ALL))
        sink.emit_many([ev("start", 1, "car")])
        assert ha.wait(lambda: ha.state(CAR) == b"ON")
    # the daemon is down while the config changes: no car, no porch
    smaller = config(data, broker.port, labels='["person"]', zones=("driveway",))
    with sink_for(smaller):
        assert ha.wait(lambda: set(ha.configs()) == {PERSON, DRIVEWAY})
        for gone in (CAR, PORCH):
            assert ha.values(gone)[-1] == b""
            assert ha.values(gone.replace("/config", "/state"))[-1] == b""  # no stale state
        # until the broker acknowledged the removals (seen at the next event or at the stop),
        # the store keeps them: a kill now would remove them again at the next start
        assert set(store.load(data / store.FILE_NAME)) == ALL
    assert set(store.load(data / store.FILE_NAME)) == {PERSON, DRIVEWAY}
    fresh = HomeAssistantSim(broker.port)  # what Home Assistant gets after its own restart
    try:
        assert fresh.wait(lambda: set(fresh.configs()) == {PERSON, DRIVEWAY})
        time.sleep(0.3)
        assert set(fresh.configs()) == {PERSON, DRIVEWAY}
        assert fresh.audit() == []
    finally:
        fresh.close()


def test_reload_on_the_same_sink_removes_and_adds(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    data = tmp_path / "data"
    with sink_for(config(data, broker.port)) as sink:
        assert ha.wait(lambda: announced(ha, ALL))
        sink.emit_many([ev("start", 1)])
        sink.reconfigure(config(data, broker.port, labels='["person", "dog"]', zones=()))
        dog = topic("binary_sensor", "front-door_dog")
        assert ha.wait(lambda: announced(ha, {PERSON, dog}))
        assert ha.state(PERSON) == b"ON"  # kept across the reload
        assert ha.audit() == []

        def noticed() -> bool:  # the next event notices the acknowledged removals
            sink.emit_many([ev("update", 1)])
            return set(store.load(data / store.FILE_NAME)) == {PERSON, dog}

        assert ha.wait(noticed)


def test_a_reload_can_turn_it_on_and_off(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    data = tmp_path / "data"
    with sink_for(config(data, broker.port, ha="")) as sink:
        assert sink.homeassistant is None and sink.publisher.connected.wait(10)
        sink.reconfigure(config(data, broker.port))  # one line added, then SIGHUP
        assert ha.wait(lambda: announced(ha, ALL))
        sink.emit_many([ev("start", 1)])
        assert ha.wait(lambda: ha.state(PERSON) == b"ON")
        sink.reconfigure(config(data, broker.port, ha="homeassistant = false\n"))
        assert ha.wait(lambda: ha.configs() == {})
        assert ha.audit() == []
    assert store.load(data / store.FILE_NAME) == {}


def test_off_by_default_publishes_nothing_under_the_prefix(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    cfg = config(tmp_path / "data", broker.port, ha="")
    assert not cfg.homeassistant.enabled
    with sink_for(cfg) as sink:
        assert sink.homeassistant is None
        assert ha.wait(lambda: "edgewise/v1/cam-1/status" in ha.retained)
        sink.emit_many([ev("start", 1)])
        time.sleep(0.5)
    assert [t for t, _, _ in ha.messages if t.startswith(PFX + "/")] == []
    assert not (tmp_path / "data" / store.FILE_NAME).exists()


def test_turned_off_removes_what_was_announced(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    data = tmp_path / "data"
    with sink_for(config(data, broker.port)):
        assert ha.wait(lambda: announced(ha, ALL))
    with sink_for(config(data, broker.port, ha="homeassistant = false\n")) as sink:
        assert sink.homeassistant is not None  # only to remove
        assert ha.wait(lambda: ha.configs() == {})
    assert store.load(data / store.FILE_NAME) == {}
    with sink_for(config(data, broker.port, ha="")) as sink:
        assert sink.homeassistant is None  # nothing left to remove: fully off


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"v": 2, "entities": {}}',
        b'{"v": 1, "entities": [1]}',
        b"\xff\xfe",
        b'{"v": 1}',
    ],
)
def test_corrupt_store_is_logged_and_read_as_empty(
    tmp_path: Path,
    broker: Broker,
    ha: HomeAssistantSim,
    content: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / store.FILE_NAME).write_bytes(content)
    with (
        caplog.at_level(logging.WARNING, "cloud_sync.ha.store"),
        sink_for(config(data, broker.port)),
    ):
        assert ha.wait(lambda: announced(ha, ALL))
    assert "corrupt" in caplog.text
    assert set(store.load(data / store.FILE_NAME)) == ALL  # rewritten whole


def test_unwritable_store_shows_in_health_and_recovers(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cloud_sync.ha.companion.SAVE_RETRY_S", 0.0)
    data = tmp_path / "data"
    data.mkdir()
    (data / store.FILE_NAME).mkdir()  # a folder where the file goes: every write fails
    with sink_for(config(data, broker.port)) as sink:
        assert ha.wait(lambda: announced(ha, ALL))  # announced anyway
        (bad,) = [h for h in sink.health() if h.name == "homeassistant"]
        assert not bad.ok and "cannot write" in (bad.reason or "")
        assert sink.homeassistant is not None and sink.homeassistant.save_errors == 1
        (data / store.FILE_NAME).rmdir()  # the disk is back
        sink.emit_many([ev("start", 1)])  # the next event writes it
        (good,) = [h for h in sink.health() if h.name == "homeassistant"]
        assert good.ok, good.reason
    assert set(store.load(data / store.FILE_NAME)) == ALL


class Boom:
    """A companion with a bug in every call."""

    def __init__(self) -> None:
        self.calls = 0

    def subscriptions(self) -> list[str]:
        return ["boom/in"]

    def connected(self, publish: object) -> None:
        self.calls += 1
        raise RuntimeError("connected broke")

    def message(self, topic: str, payload: bytes) -> None:
        self.calls += 1
        raise RuntimeError("message broke")


def test_a_failing_companion_is_counted_and_the_events_still_flow(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSim
) -> None:
    from cloud_sync.outbox import Outbox
    from cloud_sync.publisher import Publisher
    from edge.config import SyncConfig
    from edge.events import uuid7

    sync = SyncConfig(port=broker.port, delivery="broker", reconnect_min_s=0.1)
    outbox = Outbox(tmp_path / "outbox.db", "cam-1", uuid7())
    boom = Boom()
    pub = Publisher(sync, "cam-1", outbox, companions=[boom])
    pub.start()
    try:
        assert pub.connected.wait(10)
        outbox.append([ev("start", 1)])
        assert pub.wait_drained(10)

        def poked() -> bool:  # until its subscription is in place at the broker
            ha.client.publish("boom/in", b"x", 1).wait_for_publish(5)
            return boom.calls >= 2

        assert ha.wait(poked)
        time.sleep(0.3)
        assert pub.connects == 1  # the link stayed up
        assert pub.callback_errors == boom.calls
        assert "Boom.message" in (pub.last_callback_error or "")
        (broker_health,) = [h for h in pub.health() if h.name == "sync-broker"]
        assert "callback error" in (broker_health.reason or "")
    finally:
        pub.stop()
        outbox.close()
