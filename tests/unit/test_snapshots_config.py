"""``[snapshots]``: defaults, limits, and one clear line for each broken or hostile value."""

from __future__ import annotations

import pytest

from edge.config import InvalidConfigError, SnapshotsConfig, parse_config
from edge.wire import MAX_SNAPSHOT_BYTES

BASE = """\
device_id = "t1"

[[streams]]
name = "a"
source = "0"
detectors = ["face"]

[detectors.face]
model = "blazeface-short"

[snapshots]
"""
SNAP_LINE = BASE.count("\n")  # [snapshots] is the last line


def problems(key: str) -> list[str]:
    with pytest.raises(InvalidConfigError) as info:
        parse_config(BASE + key + "\n", "device.toml")
    return info.value.problems


def test_defaults_suit_a_pi_on_a_metered_link() -> None:
    cfg = parse_config(BASE, "device.toml").snapshots
    assert cfg == SnapshotsConfig()
    assert cfg.enabled and cfg.kinds == ["start", "start_crop", "best", "best_crop"]
    assert (cfg.max_dim, cfg.crop_max_dim, cfg.quality) == (640, 320, 70)
    assert (cfg.max_bytes, cfg.queue, cfg.crop_padding) == (60_000, 16, 0.25)
    assert parse_config(BASE.replace("[snapshots]\n", ""), "d.toml").snapshots == cfg


@pytest.mark.parametrize(
    "key",
    [
        "enabled = false",
        'kinds = ["best_crop"]',
        "kinds = []",
        "max_dim = 16",
        "max_dim = 4096",
        "crop_padding = 0",
        "crop_padding = 4.0",
        "quality = 100",
        f"max_bytes = {MAX_SNAPSHOT_BYTES}",
        "max_bytes = 2000",
        "queue = 1",
    ],
)
def test_values_at_the_limits_are_accepted(key: str) -> None:
    parse_config(BASE + key + "\n", "device.toml")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"max_bytes = {MAX_SNAPSHOT_BYTES + 1}", "less than or equal to 524288"),
        ("max_bytes = 0", "greater than or equal to 2000"),
        ("max_bytes = -5", "greater than or equal to 2000"),
        ("max_bytes = 1e9", "valid integer"),
        ('max_bytes = "60000"', "valid integer"),
        ("max_dim = 0", "greater than or equal to 16"),
        ("max_dim = 100000", "less than or equal to 4096"),
        ("max_dim = 640.5", "valid integer"),
        ("crop_max_dim = -1", "greater than or equal to 16"),
        ("quality = true", "valid integer"),
        ("quality = 101", "less than or equal to 100"),
        ("quality = 0", "greater than or equal to 10"),
        ("crop_padding = nan", "finite"),
        ("crop_padding = inf", "finite"),
        ("crop_padding = -0.1", "greater than or equal to 0"),
        ('crop_padding = "0.25"', "valid number"),
        ("queue = 0", "greater than or equal to 1"),
        ("queue = 99999999999999999", "less than or equal to 1024"),
        ('enabled = "yes"', "valid boolean"),
        ("enabled = 1", "valid boolean"),
        ('kinds = ["thumbnail"]', "'start', 'start_crop', 'best' or 'best_crop'"),
        ('kinds = ["start", "start"]', "more than once"),
        ('kinds = "start"', "valid list"),
        ('kinds = ["start\\u0000"]', "'start', 'start_crop', 'best' or 'best_crop'"),
        ("jpeg = true", "unknown key"),
    ],
)
def test_each_bad_value_is_one_line_at_its_key(key: str, expected: str) -> None:
    lines = problems(key)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"device.toml:{SNAP_LINE + 1} snapshots."), lines
    assert expected in lines[0], lines


def test_a_snapshots_value_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(InvalidConfigError) as info:
        text = BASE.replace("[snapshots]\n", "").replace('"t1"\n', '"t1"\nsnapshots = "on"\n')
        parse_config(text, "device.toml")
    (line,) = info.value.problems
    assert line.startswith("device.toml:2 snapshots:") and "valid dictionary" in line, line
