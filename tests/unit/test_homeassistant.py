"""Home Assistant discovery: the ``[homeassistant]`` config and its one-line form, the
entities a config announces, the payload checker against Home Assistant's documented
fields (broken and hostile payloads), the availability reading, the store, and the
companion's states with a recording publish (no broker: tests/integration has those)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.ha import HomeAssistant, check_config, store
from cloud_sync.ha.discovery import AVAILABILITY_TEMPLATE, render_availability
from cloud_sync.ha.entities import build_entities
from edge.config import DeviceConfig, InvalidConfigError, parse_config
from edge.config.homeassistant import ha_id
from edge.events import Event, ModelRef

STATUS = "edgewise/v1/cam-1/status"
MODEL = ModelRef("m", "1", "0" * 64)


def device(
    ha: str = "homeassistant = true\n",
    *,
    detector: str = 'model = "nanodet-m"\nlabels = ["person", "car"]\n',
    zones: tuple[str, ...] = ("driveway",),
    stream: str = "front-door",
    sinks: str = '[[sinks]]\ntype = "mqtt"\n[sync]\nport = 1\n',
    device_id: str = "cam-1",
) -> DeviceConfig:
    z = "".join(
        f'[[streams.zones]]\nname = "{n}"\npoints = [[0, 0], [1, 0], [1, 1]]\n' for n in zones
    )
    text = (
        f'{ha}device_id = "{device_id}"\n[[streams]]\nname = "{stream}"\nsource = "a.avi"\n'
        f'detectors = ["d"]\n{z}[detectors.d]\n{detector}{sinks}'
    )
    return parse_config(text, "device.toml")


# --- config ---------------------------------------------------------------------------------


def test_off_by_default_and_one_line_enables() -> None:
    assert not device(ha="").homeassistant.enabled
    on = device()
    assert on.homeassistant.enabled
    assert on.homeassistant.discovery_prefix == "homeassistant"
    assert on.homeassistant.node_for("cam-1") == "cam-1"
    table = device(
        ha="",
        sinks='[[sinks]]\ntype = "mqtt"\n[sync]\nport = 1\n'
        '[homeassistant]\nenabled = true\ndiscovery_prefix = "ha/disc"\nnode_id = "n1"\n',
    )
    assert table.homeassistant.enabled and table.homeassistant.node_for("x") == "n1"
    assert not device(ha="homeassistant = false\n").homeassistant.enabled


@pytest.mark.parametrize(
    ("ha", "message"),
    [
        ("homeassistant = 1\n", "true, false or a .homeassistant. table, got 1"),
        ('homeassistant = "yes"\n', "got 'yes'"),
        ("homeassistant = {enabled = true, bogus = 1}\n", "bogus"),
        ('homeassistant = {node_id = "cam.1"}\n', "node_id"),
        ('homeassistant = {node_id = ""}\n', "node_id"),
        ('homeassistant = {node_id = "a/b"}\n', "node_id"),
        ('homeassistant = {discovery_prefix = "ha/#"}\n', "discovery_prefix"),
        ('homeassistant = {discovery_prefix = "ha//x"}\n', "discovery_prefix"),
        ('homeassistant = {discovery_prefix = ""}\n', "discovery_prefix"),
        ("homeassistant = {max_labels = 0}\n", "max_labels"),
    ],
)
def test_bad_homeassistant_tables_are_refused_at_their_key(ha: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        device(ha=ha)


def test_enabled_without_an_mqtt_sink_is_refused() -> None:
    with pytest.raises(InvalidConfigError, match=r"homeassistant: .*mqtt sink"):
        device(sinks='[[sinks]]\ntype = "stdout"\n')
    device(ha="", sinks='[[sinks]]\ntype = "stdout"\n')  # off: fine


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cam-1", "cam-1"),
        ("cam.door", "cam_door"),
        ("a b/c", "a_b_c"),
        ("", "_"),
        ("Ünïcode", "_n_code"),
    ],
)
def test_ha_id_makes_valid_ids(text: str, expected: str) -> None:
    assert ha_id(text) == expected


# --- entities -------------------------------------------------------------------------------


def _topics(cfg: DeviceConfig) -> set[str]:
    return {e.config_topic for e in build_entities(cfg, STATUS, "0.1.0")}


def test_entities_from_the_label_filter_and_zones_all_pass_the_checker() -> None:
    cfg = device(
        detector='model = "nanodet-m"\nlabels = ["person", "car"]\n',
        zones=("driveway", "porch"),
        stream="front.door",
    )
    ents = build_entities(cfg, STATUS, "0.1.0")
    assert sorted(e.config_topic for e in ents) == [
        "homeassistant/binary_sensor/cam-1/front_door-41b975_car/config",
        "homeassistant/binary_sensor/cam-1/front_door-41b975_person/config",
        "homeassistant/sensor/cam-1/front_door-41b975_zone_driveway/config",
        "homeassistant/sensor/cam-1/front_door-41b975_zone_porch/config",
    ]
    for e in ents:
        assert check_config("homeassistant", e.config_topic, e.config) == []
        assert e.state_topic == e.config_topic.replace("/config", "/state")
    assert len({e.config["unique_id"] for e in ents}) == len(ents)
    person = next(e for e in ents if e.key == ("label", "front.door", "person"))
    assert person.config["name"] == "person detected at front.door"
    assert person.config["device_class"] == "occupancy"
    assert person.config["origin"] == {"name": "edgewise", "sw_version": "0.1.0"}


def test_model_labels_when_no_filter_capped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    face = device(detector='model = "blazeface-short"\n', zones=())
    assert _topics(face) == {"homeassistant/binary_sensor/cam-1/front-door_face/config"}
    coco = device(
        ha="homeassistant = {enabled = true, max_labels = 3}\n",
        detector='model = "nanodet-m"\nexclude_labels = ["bicycle"]\n',
        zones=(),
    )
    with caplog.at_level(logging.WARNING, "cloud_sync.ha.entities"):
        got = _topics(coco)
    assert got == {
        f"homeassistant/binary_sensor/cam-1/front-door_{x}/config"
        for x in ("person", "car", "motorcycle")
    }
    assert "reports 79 labels; announcing the first 3" in caplog.text
    assert "airplane" in caplog.text  # the warning names what is left out
    vad = device(detector='model = "silero-vad"\n', zones=())
    (e,) = build_entities(vad, STATUS, "0.1.0")
    assert e.config["device_class"] == "sound"


def test_labels_that_slug_alike_stay_distinct_entities() -> None:
    cfg = device(
        detector='model = "nanodet-m"\nlabels = ["traffic light", "traffic_light", '
        '"a/b", "a+b", "#"]\n',
        zones=(),
    )
    ents = build_entities(cfg, STATUS, "0.1.0")
    assert len({e.config_topic for e in ents}) == 5
    assert all(check_config("homeassistant", e.config_topic, e.config) == [] for e in ents)


def test_an_unreadable_model_announces_nothing_for_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "manifest.json").write_text("{broken")
    cfg = device(detector=f'model = "{tmp_path / "manifest.json"}"\n', zones=("z",))
    with caplog.at_level(logging.WARNING, "cloud_sync.ha.entities"):
        got = _topics(cfg)
    assert got == {"homeassistant/sensor/cam-1/front-door_zone_z/config"}
    assert "cannot read the labels" in caplog.text


# --- the checker ----------------------------------------------------------------------------

GOOD_TOPIC = "homeassistant/binary_sensor/cam-1/door_person/config"


def good() -> dict[str, Any]:
    (e,) = build_entities(device(zones=(), detector='model = "blazeface-short"\n'), STATUS, "1")
    return dict(e.config)


def _with(**kw: Any) -> dict[str, Any]:
    d = good()
    for k, v in kw.items():
        if v is ...:
            d.pop(k)
        else:
            d[k] = v
    return d


@pytest.mark.parametrize(
    ("topic", "payload", "problem"),
    [
        (GOOD_TOPIC, _with(state_topic=...), "state_topic: required"),
        (GOOD_TOPIC, _with(unique_id=...), "unique_id: required"),
        (GOOD_TOPIC, _with(unique_id=""), "unique_id"),
        (GOOD_TOPIC, _with(bogus=1), "bogus: not a documented"),
        (GOOD_TOPIC, _with(state_class="measurement"), "state_class: not a documented"),
        (GOOD_TOPIC, _with(qos="1"), "qos"),
        (GOOD_TOPIC, _with(qos=True), "qos"),
        (GOOD_TOPIC, _with(qos=3), "qos"),
        (GOOD_TOPIC, _with(state_topic="a/+/b"), "state_topic"),
        (GOOD_TOPIC, _with(state_topic="a//b"), "state_topic"),
        (GOOD_TOPIC, _with(state_topic=7), "state_topic"),
        (GOOD_TOPIC, _with(device_class="person"), "device_class"),
        (GOOD_TOPIC, _with(payload_on=1), "payload_on"),
        (GOOD_TOPIC, _with(off_delay=0), "off_delay"),
        (GOOD_TOPIC, _with(off_delay=True), "off_delay"),
        (GOOD_TOPIC, _with(icon="account"), "icon"),
        (GOOD_TOPIC, _with(device={"name": "x"}), "needs identifiers or connections"),
        (GOOD_TOPIC, _with(device={"identifiers": []}), "identifiers"),
        (GOOD_TOPIC, _with(device={"identifiers": ["a"], "name": 5}), "device.name"),
        (GOOD_TOPIC, _with(device={"identifiers": ["a"], "colour": "red"}), "device.colour"),
        (GOOD_TOPIC, _with(device="cam"), "device: an object"),
        (GOOD_TOPIC, _with(origin={}), "origin.name: required"),
        (GOOD_TOPIC, _with(origin={"name": "e", "x": 1}), "origin.x"),
        (GOOD_TOPIC, _with(availability=[]), "availability: a non-empty list"),
        (GOOD_TOPIC, _with(availability={"topic": "a"}), "availability"),
        (GOOD_TOPIC, _with(availability=[{"topic": "a/#"}]), "availability[0].topic"),
        (GOOD_TOPIC, _with(availability=[{}]), "availability[0].topic"),
        (GOOD_TOPIC, _with(availability=["a"]), "availability[0]: an object"),
        (GOOD_TOPIC, _with(availability=[{"topic": "a", "payload_available": 1}]), "payload_av"),
        (GOOD_TOPIC, _with(availability_topic="a"), "availability_topic and availability"),
        ("homeassistant/light/cam-1/x/config", good(), "not <prefix>"),
        ("homeassistant/binary_sensor/cam.1/x/config", good(), "not <prefix>"),
        ("homeassistant/binary_sensor/x/config", good(), "not <prefix>"),
        ("homeassistant/binary_sensor/a/b/c/config", good(), "not <prefix>"),
        ("other/binary_sensor/cam-1/x/config", good(), "not <prefix>"),
        ("homeassistant/binary_sensor/cam-1/x/state", good(), "not <prefix>"),
        (GOOD_TOPIC, b"{not json", "not JSON"),
        (GOOD_TOPIC, b"\xff\xfe", "not JSON"),
        (GOOD_TOPIC, b"[1, 2]", "a JSON object"),
        (GOOD_TOPIC, b"null", "a JSON object"),
        (
            "homeassistant/sensor/cam-1/x/config",
            {**good(), "payload_on": "ON"},
            "payload_on: not a documented sensor key",
        ),
        (
            "homeassistant/sensor/cam-1/x/config",
            {**_with(payload_on=..., payload_off=..., device_class=...), "state_class": "gauge"},
            "state_class",
        ),
        (
            "homeassistant/sensor/cam-1/x/config",
            {
                **_with(payload_on=..., payload_off=..., device_class=...),
                "suggested_display_precision": -1,
            },
            "suggested_display_precision",
        ),
    ],
)
def test_checker_refuses_broken_payloads(
    topic: str, payload: dict[str, Any] | bytes, problem: str
) -> None:
    problems = check_config("homeassistant", topic, payload)
    assert any(problem in p for p in problems), problems


def test_checker_accepts_good_payloads_as_dict_and_bytes() -> None:
    assert check_config("homeassistant", GOOD_TOPIC, good()) == []
    assert check_config("homeassistant", GOOD_TOPIC, json.dumps(good()).encode()) == []
    big = _with(name="x" * 100_000)  # long but valid: no crash, no problem
    assert check_config("homeassistant", GOOD_TOPIC, big) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"v":1,"device_id":"c","state":"online","boot_id":"b"}', "online"),
        (b'{"v":1,"device_id":"c","state":"offline"}', "offline"),
        (b'{"v":1,"device_id":"c","state":"stopped"}', "offline"),
        (b'{"state":"ONLINE"}', "offline"),
        (b"online", "offline"),  # not JSON: value_json undefined, the comparison fails
        (b"[]", "offline"),
        (b"", "offline"),
    ],
)
def test_availability_template_maps_states(payload: bytes, expected: str) -> None:
    assert render_availability(AVAILABILITY_TEMPLATE, payload) == expected


def test_render_refuses_templates_it_cannot_prove() -> None:
    assert render_availability("{{ value }}", b"online") is None
    assert render_availability(None, b"online") == "online"


# --- the store ------------------------------------------------------------------------------


def test_store_round_trip_missing_and_unreadable(tmp_path: Path) -> None:
    path = tmp_path / store.FILE_NAME
    assert store.load(path) == {}
    store.save(path, {"a/config": "a/state"})
    assert store.load(path) == {"a/config": "a/state"}
    assert [p.name for p in tmp_path.iterdir()] == [store.FILE_NAME]  # no stray temp file
    if os.geteuid() != 0:  # root reads anything
        path.chmod(0)
        assert store.load(path) == {}
    with pytest.raises(OSError):
        store.save(tmp_path / "missing-dir" / store.FILE_NAME, {})


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"null",
        b'"x"',
        b'{"v": 1, "entities": {"a": 1}}',
        b'{"v": 1, "entities": {"": "b"}}',
        b'{"v": "1", "entities": {}}',
    ],
)
def test_corrupt_store_reads_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / store.FILE_NAME
    path.write_bytes(content)
    assert store.load(path) == {}


# --- the companion, with a recording publish -----------------------------------------------


class Sent:
    def __init__(self, acked: bool) -> None:
        self.acked = acked

    def is_published(self) -> bool:
        return self.acked


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []
        self.ack = True

    def __call__(self, topic: str, payload: bytes) -> Sent:
        self.log.append((topic, payload))
        return Sent(self.ack)

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p in self.log if t.endswith(suffix)]


def ev(
    phase: str,
    track: int | None,
    label: str = "person",
    zone: str | None = None,
    stream: str = "front-door",
    started: float = 1.0,
) -> Event:
    return Event(
        stream,
        "vision",
        label,
        0.9,
        phase,
        started,
        time.time(),
        MODEL,  # type: ignore[arg-type]
        track_id=track,
        zone=zone,
    )


def companion(tmp_path: Path, cfg: DeviceConfig | None = None) -> tuple[HomeAssistant, Recorder]:
    ha = HomeAssistant(cfg or device(), STATUS, tmp_path, "1")
    rec = Recorder()
    ha.connected(rec)
    return ha, rec


PERSON = "front-door_person/state"
ZONE = "front-door_zone_driveway/state"


def test_states_follow_tracks_and_change_only(tmp_path: Path) -> None:
    ha, rec = companion(tmp_path)
    assert rec.on(PERSON) == [b"OFF"] and rec.on(ZONE) == [b"0"]
    ha.observe([ev("end", 5)])  # an end without a start: nothing
    ha.observe([ev("start", 1), ev("start", 1), ev("update", 1), ev("start", 2)])
    ha.observe([ev("end", 1)])
    ha.observe([ev("end", 1)])
    ha.observe([ev("end", 2)])
    assert rec.on(PERSON) == [b"OFF", b"ON", b"OFF"]
    ha.observe(
        [
            ev("enter", 3, zone="driveway"),
            ev("enter", 3, zone="driveway"),
            ev("exit", 4, zone="driveway"),
            ev("enter", 3, zone="nowhere"),
        ]
    )
    ha.observe([ev("start", 7, stream="other"), ev("enter", 7, zone="driveway", stream="other")])
    assert rec.on(ZONE) == [b"0", b"1"]
    ha.observe([ev("end", 3)])  # the end takes it out of the zone
    assert rec.on(ZONE) == [b"0", b"1", b"0"]
    assert ha.state_of(("label", "front-door", "person")) == b"OFF"


def test_tracks_without_an_id_are_told_apart_by_their_start(tmp_path: Path) -> None:
    ha, rec = companion(tmp_path)
    ha.observe([ev("start", None, started=1.0), ev("start", None, started=2.0)])
    ha.observe([ev("end", None, started=1.0)])
    assert rec.on(PERSON)[-1] == b"ON"
    ha.observe([ev("end", None, started=2.0)])
    assert rec.on(PERSON)[-1] == b"OFF"


@pytest.mark.parametrize(
    "payload", [b"", b"ONLINE", b"offline", b"online\x00", b"\xff" * 10, b"online" * 100_000]
)
def test_only_the_birth_message_reannounces(tmp_path: Path, payload: bytes) -> None:
    ha, rec = companion(tmp_path)
    n = len(rec.log)
    ha.message("homeassistant/status", payload)
    ha.message("elsewhere/status", b"online")
    assert len(rec.log) == n
    ha.message("homeassistant/status", b"online\n")
    assert len(rec.log) == 2 * n


def test_removal_stays_in_the_store_until_acknowledged(tmp_path: Path) -> None:
    ha, rec = companion(tmp_path)
    path = tmp_path / store.FILE_NAME
    assert len(store.load(path)) == 3
    rec.ack = False  # the broker has not acknowledged the removals yet
    ha.reconfigure(device(zones=()))
    assert rec.on("front-door_zone_driveway/config")[-1] == b""
    assert rec.on(ZONE)[-1] == b""
    ha.observe([])
    assert len(store.load(path)) == 3  # a kill now: the next start removes it again
    again = HomeAssistant(device(zones=()), STATUS, tmp_path, "1")
    rec2 = Recorder()
    again.connected(rec2)
    assert rec2.on("front-door_zone_driveway/config") == [b""]
    again.observe([])
    assert set(store.load(path)) == {
        "homeassistant/binary_sensor/cam-1/front-door_person/config",
        "homeassistant/binary_sensor/cam-1/front-door_car/config",
    }
    rec3 = Recorder()
    again.connected(rec3)  # acknowledged: not removed again
    assert rec3.on("front-door_zone_driveway/config") == []


def test_a_config_that_fails_the_checker_is_not_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import cloud_sync.ha.companion as comp

    real = comp.build_entities

    def broken(*a: Any) -> Any:
        out = real(*a)
        out[0].config["qos"] = "high"
        return out

    monkeypatch.setattr(comp, "build_entities", broken)
    with caplog.at_level(logging.ERROR, "cloud_sync.ha.companion"):
        ha, rec = companion(tmp_path)
    assert ha.invalid_configs == 1 and "qos" in caplog.text
    assert len(rec.on("/config")) == 2
    assert "refused" in (ha.health()[0].reason or "")


def test_a_publish_that_raises_never_fails_the_sink(tmp_path: Path) -> None:
    ha = HomeAssistant(device(), STATUS, tmp_path, "1")

    def broken(topic: str, payload: bytes) -> Sent:
        raise ValueError("paho refused it")

    with pytest.raises(ValueError):
        ha.connected(broken)  # on the network thread: the publisher counts it
    ha.observe([ev("start", 1)])  # from the sink: counted here, not raised
    assert ha.errors == 1 and "paho refused it" in (ha.last_error or "")
    (h,) = ha.health()
    assert h.ok and "following events" in (h.reason or "")
    rec = Recorder()
    ha.connected(rec)  # the next connection sends the state it missed
    assert rec.on(PERSON) == [b"ON"]
