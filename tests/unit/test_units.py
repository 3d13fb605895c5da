"""One size style everywhere: binary units from ``edge.units.format_size``."""

from __future__ import annotations

import json
import math

import pytest

from edge.cli.main import main
from edge.units import format_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (229_032, "223.7 KiB"),  # blazeface-short: once "0.23 MB" in the README, "223.7 KB" here
        (1_083_984, "1.0 MiB"),
        (1_315_210_038, "1.2 GiB"),
        (2**40, "1.0 TiB"),
        (2**60, "1048576.0 TiB"),  # past the last unit: still that unit
        (1536.0, "1.5 KiB"),
    ],
)
def test_format_size(n: float, text: str) -> None:
    assert format_size(n) == text


@pytest.mark.parametrize("bad", [-1, math.nan, -math.inf])
def test_format_size_refuses_what_is_not_a_size(bad: float) -> None:
    with pytest.raises(ValueError, match="byte count"):
        format_size(bad)


def test_models_list_and_readme_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert "223.7 KiB" in table and " KB" not in table and " MB" not in table
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    sizes = {format_size(r["size"]) for r in rows if r["size"]}
    from tests.conftest import REPO

    readme = (REPO / "docs" / "models.md").read_text()  # where gen_docs writes the zoo table
    assert all(f"| {s} |" in readme for s in sizes)  # the generated zoo table agrees
