"""``--version`` on each console script, from the one version the wheel is built with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from cloud_sync.hub.cli import main as hub_main
from converters.cli import main as convert_main
from edge import __version__
from edge.cli.main import main as edge_main
from edge.compat import tomllib

REPO = Path(__file__).resolve().parents[2]
Main = Callable[[Sequence[str] | None], int]


@pytest.mark.parametrize(
    "main", [edge_main, convert_main, hub_main], ids=["edge", "convert", "hub"]
)
def test_version_flag_prints_the_package_version_and_exits_0(
    main: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0
    assert capsys.readouterr().out == f"edgewise {__version__}\n"


def test_the_console_scripts_are_these_mains() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    assert scripts == {
        "edge": "edge.cli.entry:main",  # edge.cli.main's, with the start-up's GC paused
        "edge-convert": "converters.cli:main",
        "edge-hub": "cloud_sync.hub.cli:main",
    }
    from edge.cli import entry

    assert "from edge.cli.main import main" in Path(entry.__file__).read_text()


def test_the_wheel_takes_its_version_from_edge() -> None:
    # one source: a `version =` in pyproject.toml beside __version__ would drift from it
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "edge.__version__"}
    assert __version__.count(".") == 2 and all(p.isdigit() for p in __version__.split("."))
