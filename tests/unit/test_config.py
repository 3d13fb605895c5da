"""Device config: every example validates; each kind of mistake is reported as file:line key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.cli.main import main
from edge.config import InvalidConfigError, key_lines, load_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples" / "configs").glob("*.toml"))

GOOD = """\
device_id = "t1"

[[streams]]
name = "a"
source = "clip.avi"
detectors = ["face"]

[[streams]]
name = "b"
source = "talk.wav"
detectors = ["vad"]

[detectors.face]
model = "blazeface-short"

[detectors.vad]
model = "silero-vad"
"""


def test_there_is_an_example_for_each_kind_of_source() -> None:
    kinds = {load_config(p).streams[0].source_type for p in EXAMPLES}
    kinds |= {s.source_type for p in EXAMPLES for s in load_config(p).streams}
    assert kinds == {"camera", "video", "url", "images", "wav", "mic"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_as_shipped(
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each example as committed, from another working directory: its media
    (examples/media/) resolve relative to the config file, and a camera, RTSP stream or
    broker is named, not opened. (tests/integration/test_docs_examples.py runs the same
    command with the models checked too.)"""
    monkeypatch.chdir(tmp_path)
    assert main(["validate-config", "--no-models", str(example)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_an_example_whose_media_is_missing_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check above can fail: the same wav.toml copied away from examples/media/."""
    copy = tmp_path / "wav.toml"
    copy.write_text((REPO / "examples" / "configs" / "wav.toml").read_text())
    assert main(["validate-config", "--no-models", str(copy)]) == 2
    assert "speech.wav not found" in capsys.readouterr().err


def _problems(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[str]:
    cfg = tmp_path / "device.toml"
    cfg.write_text(text)
    for name in ("clip.avi", "talk.wav"):
        (tmp_path / name).write_bytes(b"x")
    code = main(["validate-config", *extra, str(cfg)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert (code == 0) == (not lines)
    return lines


def test_good_config_has_no_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _problems(tmp_path, GOOD, capsys, "--no-models") == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown key in the second [[streams]] table: line 12
        (
            lambda t: t.replace('detectors = ["vad"]', 'detectors = ["vad"]\nfsp = 3'),
            ":12 streams.1.fsp: unknown key",
        ),
        # wrong type: line 4
        (
            lambda t: t.replace('name = "a"', "name = 5"),
            ":4 streams.0.name: Input should be a valid string",
        ),
        # a stream names a detector that has no table: at that stream's `detectors`, line 11
        (
            lambda t: t.replace('["vad"]', '["kws"]'),
            ":11 streams.1.detectors: stream 'b' names detector 'kws'",
        ),
        # two streams with one name: at the second one's name, line 9
        (
            lambda t: t.replace('name = "b"', 'name = "a"'),
            ":9 streams.1.name: stream names must be unique: 'a'",
        ),
        # unknown key at the top
        (lambda t: "devise = 1\n" + t, ":1 devise: unknown key"),
        # wrong type in a nested table: line 15
        (
            lambda t: t.replace(
                'model = "blazeface-short"', 'model = "blazeface-short"\nthreads = "two"'
            ),
            ":15 detectors.face.threads: Input should be a valid integer",
        ),
        # unparseable TOML
        (lambda t: t.replace("[[streams]]", "[[streams]", 1), ":3 (toml)"),
    ],
)
def test_each_problem_names_file_line_and_key(
    edit: object, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(tmp_path, edit(GOOD), capsys, "--no-models")  # type: ignore[operator]
    assert any(expected in line for line in lines), lines
    assert all(line.startswith(str(tmp_path / "device.toml") + ":") for line in lines)


def test_unknown_zoo_model_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace('model = "silero-vad"', 'model = "silero-vadd"')
    lines = _problems(tmp_path, text, capsys)
    assert len(lines) == 1
    assert ":17 detectors.vad.model:" in lines[0] and "silero-vadd" in lines[0]


def test_missing_source_file_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("clip.avi", "nowhere.avi")
    lines = _problems(tmp_path, text, capsys, "--no-models")
    assert lines == [
        f"{tmp_path / 'device.toml'}:5 streams.0.source: {tmp_path / 'nowhere.avi'} not found"
    ]


def test_load_config_raises_with_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text(
        GOOD.replace('name = "a"', 'name = "a"\nfoo = 1').replace(
            "[detectors.vad]", "[detectors.vad]\nbar = 2"
        )
    )
    with pytest.raises(InvalidConfigError) as info:
        load_config(cfg)
    assert [p.split(" ")[0].rsplit(":", 1)[1] for p in info.value.problems] == ["5", "18"]


def test_key_lines_counts_arrays_of_tables() -> None:
    lines = key_lines(GOOD)
    assert lines[("streams", "1", "source")] == 10
    assert lines[("detectors", "vad", "model")] == 17


# --- the device profile sets detector defaults --------------------------------------------


def _resolved(fmt: str) -> Any:
    from edge.models import zoo
    from edge.models.resolve import ResolvedModel

    name = "ppocr-det" if fmt == "onnx" else "blazeface-short"
    return ResolvedModel(zoo.get(name), Path("unused"), name)


def test_profile_supplies_threads_and_providers_for_its_own_runtime() -> None:
    from edge.config import DetectorConfig
    from edge.pipeline.slots import backend_options
    from edge.profiles import get_profile

    pi5 = get_profile("raspberry-pi-5")  # TFLite, XNNPACK, 4 threads
    assert pi5.runtime.name == "tflite"
    tfl, onnx = _resolved("tflite"), _resolved("onnx")
    assert backend_options(DetectorConfig(model="m"), tfl, pi5) == (
        "tflite",
        pi5.runtime.threads,
        tuple(pi5.runtime.providers),
    )
    # an ONNX model on a TFLite profile: the profile's delegates do not apply
    assert backend_options(DetectorConfig(model="m"), onnx, pi5) == ("onnxruntime", 1, ())
    # the detector's own settings win
    own = DetectorConfig(model="m", threads=2, providers=["CPUExecutionProvider"])
    assert backend_options(own, onnx, get_profile("x86-64-vnni")) == (
        "onnxruntime",
        2,
        ("CPUExecutionProvider",),
    )
    assert backend_options(DetectorConfig(model="m"), tfl, None) == ("tflite", 1, ())


def test_unknown_profile_is_a_config_error(tmp_path: Path) -> None:
    from edge.config import load_config

    path = tmp_path / "device.toml"
    path.write_text(
        'device_id = "d"\nprofile = "raspberry-pi-9"\n'
        '[[streams]]\nname = "s"\nsource = "0"\ndetectors = ["face"]\n'
        '[detectors.face]\nmodel = "blazeface-short"\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "unknown profile 'raspberry-pi-9'" in str(exc.value)


# --- bounds shared with the wire: checked through the CLI, at the key's line ----------------


def test_device_id_over_64_characters_fails_validate_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace('device_id = "t1"', f'device_id = "{"d" * 70}"')
    lines = _problems(tmp_path, text, capsys, "--no-models")
    assert lines == [
        f"{tmp_path / 'device.toml'}:1 device_id: String should have at most 64 characters"
    ]
    # 64 is the limit, from edge.wire (the hub stores the same bound)
    from edge.wire import DEVICE_ID_MAX

    text = GOOD.replace('device_id = "t1"', f'device_id = "{"d" * DEVICE_ID_MAX}"')
    assert _problems(tmp_path, text, capsys, "--no-models") == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('device_id = "a/b"', ":1 device_id: use letters, digits and `_.-`"),
        ('device_id = "t1\\n"', ":1 device_id: use letters, digits"),
        ('device_id = "+"', ":1 device_id: use letters, digits"),
    ],
)
def test_device_id_must_be_one_topic_level(
    line: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(tmp_path, GOOD.replace('device_id = "t1"', line), capsys, "--no-models")
    assert len(lines) == 1 and expected in lines[0], lines


SYNC = (
    GOOD
    + """
[[sinks]]
type = "mqtt"

[sync]
protocol = "5"
"""
)
SYNC_LINE = SYNC.count("\n")  # the line a key appended to SYNC lands on


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ('client_id = "dev 1"', "sync.client_id: use letters, digits and `_.:-`"),
        ('client_id = "dev/1"', "sync.client_id: use letters, digits"),
        (f'client_id = "{"c" * 129}"', "sync.client_id: String should have at most 128"),
        ('client_id = ""', "sync.client_id: use letters, digits"),
        ('prefix = "edgewise/+/v1"', "sync.prefix: '+' is not allowed in a topic prefix"),
        ('prefix = "edgewise/#"', "sync.prefix: '#' is not allowed"),
        ('prefix = "$SYS/edgewise"', "sync.prefix: a topic prefix must not start with '$'"),
        ('prefix = "edgewise//v1"', "sync.prefix: a topic prefix has no empty levels"),
        ('prefix = "/edgewise"', "sync.prefix: a topic prefix has no empty levels"),
        ('prefix = "edgewise/"', "sync.prefix: a topic prefix has no empty levels"),
        ('prefix = ""', "sync.prefix: String should have at least 1"),
        ('prefix = "a\\u0000b"', "sync.prefix: '\\x00' is not allowed"),
        (f'prefix = "{"p" * 129}"', "sync.prefix: String should have at most 128"),
        ('username = "dev\\u0000"', "sync.username: control characters are not allowed"),
        ('host = "broker local"', "sync.host: a host name or address has no spaces"),
        ('host = ""', "sync.host: String should have at least 1"),
        ("port = 0", "sync.port: Input should be greater than 0"),
        ("port = 65536", "sync.port: Input should be less than 65536"),
        ("keepalive_s = 4", "sync.keepalive_s: Input should be greater than or equal to 5"),
        ("batch_max_events = 1001", "sync.batch_max_events: Input should be less than or equal"),
        ("telemetry_interval_s = inf", "sync.telemetry_interval_s: Input should be a finite"),
        ("puback_timeout_s = nan", "sync.puback_timeout_s: Input should be a finite number"),
        ("reconnect_min_s = 60.0", "sync: reconnect_max_s must be >= reconnect_min_s"),
        ('model_public_key = "abcd"', "sync.model_public_key: not an Ed25519 public key"),
        ('tls = { cert_file = "c.pem" }', "sync.tls: mutual TLS needs both cert_file and key_file"),
    ],
)
def test_each_constrained_sync_field_is_checked_at_its_line(
    key: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(tmp_path, SYNC + key + "\n", capsys, "--no-models")
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 'device.toml'}:")
    line_no = int(lines[0].split(" ", 1)[0].rsplit(":", 1)[1])
    # a field's problem is at its own line; a check across fields, at the [sync] header
    assert line_no in (SYNC_LINE + 1, SYNC_LINE - 1), lines
    assert expected in lines[0], lines


@pytest.mark.parametrize(
    "key",
    [
        'client_id = "yard-nvr.cam:1"',
        f'client_id = "{"c" * 128}"',
        'prefix = "acme/site 1/édgewise"',
        f'prefix = "{"p" * 128}"',
        'username = "device-1"',
        'host = "::1"',
        'model_public_key = "' + "A" * 43 + '="',  # base64 of 32 bytes
        'model_public_key = "-----BEGIN PUBLIC KEY-----\\nMCow...\\n-----END PUBLIC KEY-----"',
        'tls = { cert_file = "c.pem", key_file = "k.pem" }',
    ],
)
def test_sync_values_at_the_limits_are_accepted(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("-----BEGIN X-----\n")
    assert _problems(tmp_path, SYNC + key + "\n", capsys, "--no-models") == []


# --- [[sinks]]: one model per type -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ('type = "jsonl"', ":19 sinks.0.path: Field required"),  # at the table
        ('type = "stdout"\npath = "x.jsonl"', ":21 sinks.0.path: unknown key"),
        ('type = "mqtt"\nflush_every = 2', ":21 sinks.0.flush_every: unknown key"),
        ('type = "kafka"', ":20 sinks.0.type: unknown sink type 'kafka'; use one of jsonl"),
        ("flush_every = 2", ":19 sinks.0: a sink needs `type`, one of jsonl, stdout, mqtt"),
        ('type = "jsonl"\npath = "e.jsonl"\nflush_every = 0', ":22 sinks.0.flush_every: Input"),
        ('type = "mqtt"', "an mqtt sink needs a [sync] section"),
    ],
)
def test_each_sink_type_has_its_own_keys(
    sink: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(tmp_path, GOOD + "\n[[sinks]]\n" + sink + "\n", capsys, "--no-models")
    assert len(lines) == 1 and expected in lines[0], lines


def test_sinks_are_typed_and_their_paths_resolved(tmp_path: Path) -> None:
    from edge.config import JsonlSinkConfig, MqttSinkConfig, StdoutSinkConfig

    path = tmp_path / "d.toml"
    path.write_text(
        SYNC + '\n[[sinks]]\ntype = "jsonl"\npath = "out/e.jsonl"\n\n[[sinks]]\ntype = "stdout"\n'
    )
    cfg = load_config(path)
    assert [type(s) for s in cfg.sinks] == [MqttSinkConfig, JsonlSinkConfig, StdoutSinkConfig]
    jsonl = cfg.sinks[1]
    assert isinstance(jsonl, JsonlSinkConfig) and jsonl.path == tmp_path / "out" / "e.jsonl"
    # no [[sinks]]: events go to stdout
    path.write_text(GOOD)
    assert [s.type for s in load_config(path).sinks] == ["stdout"]


def test_the_sink_registry_loads_each_factory_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import cloud_sync.sink
    from edge import sinks

    assert sinks.sink_factory("mqtt") is cloud_sync.sink.from_daemon
    assert sinks.sink_factory("jsonl") is sinks._jsonl
    with pytest.raises(ConfigError, match="unknown sink type 'kafka'"):
        sinks.sink_factory("kafka")
    # a factory whose extra is not installed: one line naming what to install
    monkeypatch.setitem(sinks.SINKS, "mqtt", "edgewise_no_such_module.sink:from_daemon")
    with pytest.raises(ConfigError, match=r"needs edgewise_no_such_module.*edgewise\[sync\]"):
        sinks.sink_factory("mqtt")


def test_every_sink_type_in_the_config_has_a_factory() -> None:
    from edge.config import SINK_TYPES
    from edge.sinks import SINKS

    assert sorted(SINK_TYPES) == sorted(SINKS)


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_bytes(GOOD.encode() + b"# \xff\n")
    with pytest.raises(ConfigError, match=r"d.toml: the config is not UTF-8 text"):
        load_config(path)


def test_the_public_names_still_import() -> None:
    from edge.config import (  # noqa: F401
        DetectorConfig,
        DeviceConfig,
        SinkConfig,
        StreamConfig,
        SyncConfig,
        load_config,
        parse_config,
        resolve_paths,
    )


def test_validate_config_reports_a_sink_whose_extra_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge import sinks

    monkeypatch.setitem(sinks.SINKS, "mqtt", "edgewise_no_such_module.sink:from_daemon")
    lines = _problems(tmp_path, SYNC, capsys, "--no-models")
    assert lines == [
        f"{tmp_path / 'device.toml'}:20 sinks.0.type: the mqtt sink needs "
        "edgewise_no_such_module, which is not installed; install edgewise[sync]"
    ]


def test_sync_files_are_relative_to_the_config_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = 'password_file = "secret"\ntls = { ca_file = "pki/ca.pem" }\n'
    lines = _problems(tmp_path, SYNC + tls, capsys, "--no-models")
    origin = tmp_path / "device.toml"
    assert lines == [
        f"{origin}:{SYNC_LINE + 1} sync.password_file: {tmp_path / 'secret'} not found",
        f"{origin}:{SYNC_LINE + 2} sync.tls.ca_file: {tmp_path / 'pki' / 'ca.pem'} not found",
    ]
    (tmp_path / "secret").write_text("pw\n")
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert _problems(tmp_path, SYNC + tls, capsys, "--no-models") == []
    cfg = load_config(origin)
    assert cfg.sync is not None and cfg.sync.tls is not None
    assert cfg.sync.password_file == tmp_path / "secret"
    assert cfg.sync.tls.ca_file == tmp_path / "pki" / "ca.pem"
    assert cfg.sync.outbox.path == Path("outbox.db")  # relative to the data dir, not here


def test_every_reference_problem_is_reported_at_its_own_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        GOOD.replace('device_id = "t1"', 'device_id = "t1"\nprofile = "raspberry-pi-9"')
        .replace('["face"]', '["face", "kws"]')
        .replace('["vad"]', '["ocr"]')
    ) + '\n[[sinks]]\ntype = "mqtt"\n'
    lines = _problems(tmp_path, text, capsys, "--no-models")
    at = [line.split(" ", 2)[0].rsplit(":", 1)[1] + " " + line.split(" ", 2)[1] for line in lines]
    assert at == [
        "7 streams.0.detectors:",
        "12 streams.1.detectors:",
        "2 profile:",
        "21 sinks.0.type:",
    ], lines
