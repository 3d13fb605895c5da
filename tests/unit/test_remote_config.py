"""The remote-config allow-list (issue 11 item 1): what a `config` command may change.

The diff is on the raw TOML (before env expansion and validation); anything off the
allow-list, and any changed value holding `${`, refuses the whole command.
"""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from edge.config import DeviceConfig
from edge.config.remote import (
    ANY_INDEX,
    ANY_KEY,
    REMOTE_KEYS,
    RemoteConfigRefusedError,
    changed_keys,
    check_remote_config,
    flatten,
    key_name,
)
from edge.errors import ConfigError

BASE = """\
device_id = "cam1"
data_dir = "/var/lib/edgewise"

[[streams]]
name = "door"
source = "rtsp://admin:${RTSP_PASSWORD}@10.0.0.5/stream"
detectors = ["face"]
fps_limit = 10
thresholds = {face = 0.6}

[detectors.face]
model = "blazeface-short"
threshold = 0.5

[[sinks]]
type = "jsonl"
path = "events.jsonl"

[[sinks]]
type = "mqtt"

[sync]
host = "broker.local"
telemetry_interval_s = 10
model_public_key = "OWNERKEYOWNERKEYOWNERKEYOWNERKEYOWNERKEYOWN="
"""

ATTACKER_KEY = "ATTACKERKEYATTACKERKEYATTACKERKEYATTACKERK="


def refused(remote: str) -> list[str]:
    with pytest.raises(RemoteConfigRefusedError) as info:
        check_remote_config(BASE, remote, origin="/etc/edgewise/device.toml")
    return info.value.keys


ALLOWED: list[tuple[str, str, str]] = [
    ("detector threshold", "threshold = 0.5", "threshold = 0.7"),
    ("stream threshold", "thresholds = {face = 0.6}", "thresholds = {face = 0.8}"),
    ("stream thresholds emptied", "thresholds = {face = 0.6}", "thresholds = {}"),
    ("fps limit", "fps_limit = 10", "fps_limit = 5"),
    ("fps limit removed", "fps_limit = 10\n", ""),
    ("zones", "fps_limit = 10", "fps_limit = 10\nzones = [[[0, 0], [1, 0], [1, 1]]]"),
    (
        "named zones and lines added",
        "thresholds = {face = 0.6}\n",
        "thresholds = {face = 0.6}\nzone_filter = true\n"
        '[[streams.zones]]\nname = "porch"\npoints = [[0, 0], [1, 0], [1, 1]]\ninertia = 2\n'
        '[[streams.lines]]\nname = "gate"\nstart = [0, 0.5]\nend = [1, 0.5]\n',
    ),
    ("motion gate added", "fps_limit = 10", "fps_limit = 10\nmotion_gate = {}"),
    (
        "motion gate tuned",
        "fps_limit = 10",
        "fps_limit = 10\nmotion_gate = {threshold = 3.0, max_skip_s = 1.0}",
    ),
    (
        "tracking table",
        '[[sinks]]\ntype = "jsonl"',
        "[tracking]\nmin_hits = 2\nmax_missing = 9\n"
        'update_interval_s = 2.0\n\n[[sinks]]\ntype = "jsonl"',
    ),
    ("telemetry interval", "telemetry_interval_s = 10", "telemetry_interval_s = 30"),
    (
        "detector label filters",
        "threshold = 0.5",
        'threshold = 0.5\nlabels = ["face"]\nexclude_labels = []\nmin_area = 0.01\nmax_area = 0.5',
    ),
    (
        "detector label thresholds",
        "threshold = 0.5",
        "threshold = 0.5\nlabel_thresholds = {face = 0.7}",
    ),
    (
        "detector label thresholds emptied",
        "threshold = 0.5",
        "threshold = 0.5\nlabel_thresholds = {}",
    ),
    ("comments and layout", "[detectors.face]", "# tuned by the fleet\n[detectors . face ]"),
]


@pytest.mark.parametrize(("name", "old", "new"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_allowed_changes_pass(name: str, old: str, new: str) -> None:
    assert old in BASE
    check_remote_config(BASE, BASE.replace(old, new, 1), origin="device.toml")


REFUSED: list[tuple[str, str, str, list[str]]] = [
    # the attack from the issue: swap the key that verifies model updates
    (
        "model key swap",
        "OWNERKEYOWNERKEYOWNERKEYOWNERKEYOWNERKEYOWN=",
        ATTACKER_KEY,
        ["sync.model_public_key"],
    ),
    (
        "model key removed",
        'model_public_key = "OWNERKEYOWNERKEYOWNERKEYOWNERKEYOWNERKEYOWN="\n',
        "",
        ["sync.model_public_key"],
    ),
    ("broker", 'host = "broker.local"', 'host = "evil.example"', ["sync.host"]),
    ("device id", 'device_id = "cam1"', 'device_id = "cam2"', ["device_id"]),
    ("data dir", 'data_dir = "/var/lib/edgewise"', 'data_dir = "/etc"', ["data_dir"]),
    (
        "models home",
        'data_dir = "/var/lib/edgewise"',
        'data_dir = "/var/lib/edgewise"\nmodels_home = "/tmp/x"',
        ["models_home"],
    ),
    (
        "detector model",
        'model = "blazeface-short"',
        'model = "/tmp/evil/manifest.json"',
        ["detectors.face.model"],
    ),
    (
        "detector backend",
        "threshold = 0.5",
        'threshold = 0.5\nproviders = ["CUDAExecutionProvider"]',
        ["detectors.face.providers"],
    ),
    ("stream url", "@10.0.0.5/stream", "@198.51.100.9/stream", ["streams[0].source"]),
    (
        "stream detectors",
        'detectors = ["face"]',
        'detectors = ["face", "face2"]',
        ["streams[0].detectors"],
    ),
    (
        "sink path",
        'path = "events.jsonl"',
        'path = "/root/.ssh/authorized_keys"',
        ["sinks[0].path"],
    ),
    (
        "sink removed",
        '[[sinks]]\ntype = "jsonl"\npath = "events.jsonl"\n\n',
        "",
        ["sinks[0].type", "sinks[0].path", "sinks[1].type"],
    ),  # by index: sinks[0] is now the mqtt one
    ("health listener", "[sync]", '[health]\nhost = "0.0.0.0"\n\n[sync]', ["health.host"]),
    (
        "profile",
        'data_dir = "/var/lib/edgewise"',
        'data_dir = "/var/lib/edgewise"\nprofile = "rpi5"',
        ["profile"],
    ),
    ("tls table turned on", "[sync]", "[sync.tls]\n\n[sync]", ["sync.tls"]),
    ("an unknown key", "fps_limit = 10", "fps_limit = 10\nbogus = 1", ["streams[0].bogus"]),
]


@pytest.mark.parametrize(("name", "old", "new", "keys"), REFUSED, ids=[r[0] for r in REFUSED])
def test_other_changes_are_refused_naming_the_keys(
    name: str, old: str, new: str, keys: list[str]
) -> None:
    assert old in BASE
    assert sorted(refused(BASE.replace(old, new, 1))) == sorted(keys)


def test_refusal_says_how_to_change_them() -> None:
    with pytest.raises(RemoteConfigRefusedError) as info:
        check_remote_config(
            BASE,
            BASE.replace('"blazeface-short"', '"x"').replace("broker.local", "evil"),
            origin="/etc/edgewise/device.toml",
        )
    msg = str(info.value)
    assert "detectors.face.model" in msg and "sync.host" in msg
    assert "/etc/edgewise/device.toml on the device" in msg
    assert "signed `model` command" in msg
    assert "detectors.NAME.threshold" in msg  # what may change
    assert "\n" not in msg


def test_a_stream_added_is_refused() -> None:
    extra = '[[streams]]\nname = "back"\nsource = "/dev/video1"\ndetectors = ["face"]\n\n'
    keys = refused(BASE.replace("[detectors.face]", extra + "[detectors.face]"))
    assert "streams[1].source" in keys


def test_a_changed_value_reading_the_environment_is_refused() -> None:
    # the key may change, but its new value would be expanded from the device's environment
    keys = refused(BASE.replace("fps_limit = 10", 'fps_limit = "${AWS_SECRET_ACCESS_KEY}"'))
    assert keys == ["streams[0].fps_limit"]
    with pytest.raises(RemoteConfigRefusedError, match=r"may not contain '\$\{'"):
        check_remote_config(BASE, BASE.replace("0.6}", '0.6, "${HOME}" = 0.5}'), origin="x")
    # $${ is a literal in the config syntax, but the check does not try to be clever
    assert refused(BASE.replace("zones", "x").replace("fps_limit = 10", 'fps_limit = "$${X}"'))


def test_an_unchanged_value_with_an_env_reference_passes() -> None:
    """The owner's own `${RTSP_PASSWORD}` stays as it is in the remote text: not a change."""
    assert "${RTSP_PASSWORD}" in BASE
    check_remote_config(BASE, BASE.replace("threshold = 0.5", "threshold = 0.9"), origin="x")


def test_not_toml() -> None:
    with pytest.raises(ConfigError, match="not TOML"):
        check_remote_config(BASE, "= =", origin="x")
    with pytest.raises(ConfigError, match="config file on the device is not TOML"):
        check_remote_config("= =", BASE, origin="x")


def test_flatten_and_names() -> None:
    doc = {"a": {}, "s": [{"x": 1}, {}], "l": [1, [2]], "t": {"u": {"v": "w"}}}
    assert flatten(doc) == {
        ("a",): {},
        ("s", 0, "x"): 1,
        ("s", 1): {},
        ("l",): [1, [2]],
        ("t", "u", "v"): "w",
    }
    assert key_name(("streams", 0, "thresholds", "face")) == "streams[0].thresholds.face"
    assert changed_keys({"a": 1, "b": 2}, {"a": 1, "c": 3}) == [("c",), ("b",)]
    assert changed_keys({"a": 1, "b": [1]}, {"a": 1.0, "b": [True]}) == [("a",), ("b",)]


def _field(model: type[BaseModel], name: str) -> typing.Any:
    assert name in model.model_fields, f"{model.__name__} has no field {name!r}"
    return model.model_fields[name].annotation


def _unwrap(tp: typing.Any) -> typing.Any:
    """``X | None``, ``list[X]``, ``dict[str, X]`` → ``X`` where X is a model."""
    for arg in (tp, *typing.get_args(tp)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = [a for a in typing.get_args(arg) if isinstance(a, type)]
        for a in inner:
            if issubclass(a, BaseModel):
                return a
    return tp


@pytest.mark.parametrize("pattern", list(REMOTE_KEYS))
def test_every_allowed_key_is_a_real_field(pattern: str) -> None:
    """The list names fields the config has (a renamed field cannot leave a stale entry)."""
    parts = pattern.replace("[]", ".[]").split(".")
    node: typing.Any = DeviceConfig
    for part in parts:
        if part in (ANY_INDEX, ANY_KEY):
            continue
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            pytest.fail(f"{pattern}: {part!r} is below a value, not a table")
        node = _unwrap(_field(node, part))


def test_nothing_that_names_a_file_url_model_or_key_is_allowed() -> None:
    for key in REMOTE_KEYS:
        last = key.split(".")[-1]
        assert last not in {"model", "source", "path", "host", "model_public_key"}, key
        assert not key.startswith(("sinks", "health", "device_id", "data_dir", "models_home"))
        assert not key.startswith("sync.") or key == "sync.telemetry_interval_s"
