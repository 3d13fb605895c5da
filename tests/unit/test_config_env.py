"""``${NAME}`` in config values (issue 11, item 7): from the environment, after the TOML
parse and before validation; ``$${`` is a literal ``${``; a missing variable is a problem at
its field, naming the variable and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import InvalidConfigError, load_config, parse_config, parse_toml
from edge.config.env import expand_string

REPO = Path(__file__).resolve().parents[2]

BASE = """\
device_id = "{device}"

[[streams]]
name = "cam"
source = "rtsp://admin:${{CAM_PW}}@cam.local/live"
detectors = ["face"]

[[streams]]
name = "door"
source = "${{DOOR_URL}}"
detectors = ["face"]
thresholds = {{ face = 0.5 }}

[detectors.face]
model = "blazeface-short"
{extra}"""


def _text(device: str = "dev-1", extra: str = "") -> str:
    return BASE.format(device=device, extra=extra)


ENV = {"CAM_PW": "p@ss w$rd", "DOOR_URL": "http://door.local/v.mjpg", "SITE": "lab"}


def test_string_values_at_every_depth_come_from_the_environment() -> None:
    extra = """
[[sinks]]
type = "jsonl"
path = "/var/lib/edge/${SITE}/events.jsonl"

[sync]
host = "mqtt.${SITE}.example"
username = "${SITE}-dev"
password_file = "${CREDENTIALS_DIRECTORY}/mqtt"
"""
    env = {**ENV, "CREDENTIALS_DIRECTORY": "/run/credentials/edge.service"}
    cfg = parse_config(_text("dev-${SITE}", extra), "edge.toml", env)
    assert cfg.device_id == "dev-lab"
    assert cfg.streams[0].source == "rtsp://admin:p@ss w$rd@cam.local/live"  # as it is
    assert cfg.streams[1].source == "http://door.local/v.mjpg"
    assert cfg.streams[1].source_type == "url"  # expanded before validation
    assert str(cfg.sinks[0].path) == "/var/lib/edge/lab/events.jsonl"  # type: ignore[union-attr]
    assert cfg.sync is not None and cfg.sync.host == "mqtt.lab.example"
    assert cfg.sync.username == "lab-dev"
    assert str(cfg.sync.password_file) == "/run/credentials/edge.service/mqtt"


def test_arrays_and_inline_tables_are_expanded() -> None:
    text = _text().replace(
        'detectors = ["face"]\n\n[[streams]]', 'detectors = ["${DET}"]\n\n[[streams]]'
    )
    cfg = parse_config(text, "edge.toml", {**ENV, "DET": "face"})
    assert cfg.streams[0].detectors == ["face"]
    doc = parse_toml('a = [["${X}", {k = "${X}"}]]\n[t.u]\nv = {w = ["${X}"]}\n', "t.toml")
    from edge.config.env import expand_env

    data, problems = expand_env(doc, {"X": "1"})
    assert problems == [] and data == {"a": [["1", {"k": "1"}]], "t": {"u": {"v": {"w": ["1"]}}}}
    assert doc["a"][0][0] == "${X}"  # the parsed TOML itself is left as written


def test_a_missing_variable_is_a_problem_at_its_field_naming_the_variable_and_the_fix() -> None:
    with pytest.raises(InvalidConfigError) as err:
        parse_config(_text(), "edge.toml", {"CAM_PW": "x"})
    (problem,) = err.value.problems
    assert problem.startswith("edge.toml:10 streams.1.source: environment variable DOOR_URL ")
    assert "is not set" in problem and "Environment=" in problem and "$${" in problem
    with pytest.raises(InvalidConfigError) as err:
        parse_config(_text(), "edge.toml", {})
    assert [p.split(": ")[0] for p in err.value.problems] == [
        "edge.toml:5 streams.0.source",
        "edge.toml:10 streams.1.source",
    ]


def test_dollar_dollar_brace_is_a_literal_and_values_are_not_expanded_twice() -> None:
    env = {"A": "${B}", "B": "no"}
    assert expand_string("x-$${A}-y", env) == ("x-${A}-y", [])
    assert expand_string("${A}", env) == ("${B}", [])  # a value is not scanned again
    assert expand_string("cost $5, $$ and $ {A}", env) == ("cost $5, $$ and $ {A}", [])
    assert expand_string("${A}${A}", env) == ("${B}${B}", [])


@pytest.mark.parametrize(
    ("value", "says"),
    [("${NOPE}", "environment variable NOPE is not set"),
     ("${unclosed", "without a closing"),
     ("${1X}", "is not a variable name"),
     ("${}", "is not a variable name"),
     ("${A-B}", "is not a variable name")],
)  # fmt: skip
def test_bad_references(value: str, says: str) -> None:
    _, errors = expand_string(value, {"A": "1"})
    assert len(errors) == 1 and says in errors[0] and "$${" in errors[0]


def test_keys_are_never_expanded() -> None:
    text = _text().replace("[detectors.face]", '[detectors."${DET}"]')
    with pytest.raises(InvalidConfigError) as err:
        parse_config(text, "edge.toml", {**ENV, "DET": "face"})
    assert "defined: ['${DET}']" in err.value.problems[0], err.value.problems


def test_a_value_from_the_environment_cannot_inject_toml() -> None:
    for injected in ('x"\n[health]\nport = 1\nenabled = "', "http://door/v\n[health]\nport = 1"):
        cfg = parse_config(_text(), "edge.toml", {**ENV, "DOOR_URL": injected})
        assert cfg.streams[1].source == injected  # one string, checked as one
        assert cfg.health.port != 1 and cfg.health.enabled


def test_defaults_to_os_environ_and_load_config_takes_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(_text())
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert load_config(path).streams[1].source == "http://door.local/v.mjpg"
    other = {**ENV, "DOOR_URL": "rtsp://other/x"}
    assert load_config(path, other).streams[1].source == "rtsp://other/x"
    assert "${DOOR_URL}" in path.read_text()  # the file keeps what was written


def test_validate_config_names_the_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(_text())
    env = {"PATH": "/usr/bin:/bin", "CAM_PW": "s3cret"}
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "validate-config", "--no-models", str(path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert r.returncode == 2
    assert f"{path}:10 streams.1.source: environment variable DOOR_URL is not set" in r.stderr
    assert "s3cret" not in r.stderr
