""" "Did you mean …" for unknown models, profiles, config keys and sub-commands."""

from __future__ import annotations

import pytest

from edge.config import DeviceConfig, InvalidConfigError
from edge.config.keys import allowed_keys
from edge.config.load import parse_config
from edge.errors import ProfileError, ZooError
from edge.models import zoo
from edge.profiles import get_profile
from edge.suggest import close_matches, did_you_mean
from tests.unit.test_config import GOOD


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("blazefce-short", " (did you mean 'blazeface-short' or 'blazeface-full'?)"),
        ("BLAZEFACE-SHORT", " (did you mean 'blazeface-short' or 'blazeface-full'?)"),
        ("silero", " (did you mean 'silero-vad'?)"),
        ("zzzzzz", ""),  # nothing close: no guess
        ("", ""),
        ("x" * 100_000, ""),  # hostile: a huge name is compared, not echoed back
        ("blazeface-short'\n", " (did you mean 'blazeface-short' or 'blazeface-full'?)"),
    ],
)
def test_did_you_mean(word: str, expected: str) -> None:
    assert did_you_mean(word, zoo.zoo()) == expected


def test_close_matches_keeps_the_choice_as_spelled() -> None:
    assert close_matches("Path", ["path", "paths"]) == ["path", "paths"]
    assert close_matches("a", []) == []


def test_unknown_model_suggests() -> None:
    with pytest.raises(ZooError, match=r"unknown model 'okay-nbu' \(did you mean 'okay-nabu'\?\)"):
        zoo.get("okay-nbu")
    with pytest.raises(ZooError, match=r"unknown model 'qq' \(the zoo: alexa, "):
        zoo.get("qq")  # nothing close: the whole zoo instead


def test_unknown_profile_suggests() -> None:
    with pytest.raises(ProfileError, match=r"'raspbery-pi-5' \(did you mean 'raspberry-pi-5'"):
        get_profile("raspbery-pi-5")
    with pytest.raises(ProfileError) as exc:
        get_profile("qqqq")
    assert "did you mean" not in str(exc.value)


def _problems(text: str) -> list[str]:
    with pytest.raises(InvalidConfigError) as exc:
        parse_config(text, "c.toml", environ={})
    return exc.value.problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: "devise_id = 1\n" + t,
            "c.toml:1 devise_id: unknown key (did you mean 'device_id'?)",
        ),
        (
            lambda t: t.replace('name = "a"', 'name = "a"\nsorce = "x"'),
            "c.toml:5 streams.0.sorce: unknown key (did you mean 'source'?)",
        ),
        (
            lambda t: t.replace('model = "silero-vad"', 'model = "silero-vad"\nthreshhold = 0.5'),
            "c.toml:18 detectors.vad.threshhold: unknown key "
            "(did you mean 'threshold' or 'label_thresholds'?)",
        ),
        (
            lambda t: t + '\n[[sinks]]\ntype = "jsonl"\npath = "e.jsonl"\nflush_evry = 2\n',
            "c.toml:22 sinks.0.flush_evry: unknown key (did you mean 'flush_every'?)",
        ),
        # nothing close: the old advice
        (
            lambda t: "qqqqqq = 1\n" + t,
            "c.toml:1 qqqqqq: unknown key; check its spelling (see examples/configs/)",
        ),
    ],
)
def test_unknown_config_key_suggests(edit: object, expected: str) -> None:
    assert callable(edit)
    assert expected in _problems(edit(GOOD))


def test_allowed_keys_walks_lists_optionals_and_the_sink_union() -> None:
    assert "device_id" in allowed_keys(DeviceConfig, ("x",))
    assert "source" in allowed_keys(DeviceConfig, ("streams", 0, "x"))
    jsonl = allowed_keys(DeviceConfig, ("sinks", 0, "jsonl", "x"))
    assert "path" in jsonl and "flush_every" in jsonl
    assert allowed_keys(DeviceConfig, ("no_such_table", "x")) == []
    assert "threshold" in allowed_keys(DeviceConfig, ("detectors", "vad", "x"))
