"""What every edgewise CLI shares: no abbreviated flags, one table of exit codes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hub.cli import build_parser as hub_parser
from converters.cli import build_parser as convert_parser
from edge import exit_codes
from edge.cli.main import build_parser as edge_parser
from edge.cli.main import main as edge_main

REPO = Path(__file__).resolve().parents[2]
PARSERS = {"edge": edge_parser, "edge-convert": convert_parser, "edge-hub": hub_parser}


def _walk(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_no_parser_takes_abbreviations(prog: str) -> None:
    found = list(_walk(PARSERS[prog](), prog))
    assert len(found) >= (1 if prog == "edge-convert" else 4)  # the walk reached sub-commands
    assert [p for p, parser in found if parser.allow_abbrev] == []


def test_abbreviated_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # `--conf` for `--config` was taken silently; now argparse says it does not know it
    with pytest.raises(SystemExit) as exc:
        edge_main(["run", "--conf", "x.toml"])
    assert exc.value.code == exit_codes.USAGE
    assert "--conf" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        convert_parser().parse_args(["m", "--prof", "x86-64-vnni"])
    assert exc.value.code == exit_codes.USAGE


def test_docs_table_lists_every_exit_code() -> None:
    doc = (REPO / "docs" / "cli.md").read_text()
    rows = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|", doc, re.M))
    assert {int(k) for k in rows} == set(exit_codes.ALL)


_LITERAL_EXIT = re.compile(
    r"exit_code = \d|return [1-9]\d*$|sys\.exit\([1-9]|SystemExit\([1-9\"']", re.M
)


def test_no_exit_code_outside_the_table() -> None:
    """Every exit code comes from ``edge.exit_codes``: no literal in the CLIs' code."""
    roots = [REPO / "edge", REPO / "converters", REPO / "cloud_sync"]
    cli_files = [
        *sorted((REPO / "edge" / "cli").glob("*.py")),
        REPO / "converters" / "cli.py",
        REPO / "cloud_sync" / "hub" / "cli.py",
        REPO / "cloud_sync" / "hub" / "keys_cli.py",
    ]
    errors = [p for r in roots for p in r.rglob("*.py") if "exit_code" in p.read_text()]
    offenders = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p in {*cli_files, *errors}
        for m in _LITERAL_EXIT.finditer(p.read_text())
    ]
    assert offenders == []


def test_usage_mistake_argparse_cannot_see_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert edge_main(["models", "pull"]) == exit_codes.USAGE
    assert capsys.readouterr().err.strip() == "edge: error: name at least one model, or --all"


def test_mistyped_subcommand_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        edge_main(["modles", "list"])
    assert exc.value.code == exit_codes.USAGE
    assert "(did you mean 'models'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        edge_main(["xyzzy"])  # nothing close: the choices, no guess
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "prog", "flag", "meant"),
    [
        (["run", "--conf", "x.toml"], "edge run", "--conf", "'--config'"),
        (["run", "--config", "x", "--conf", "y"], "edge run", "--conf", "'--config'"),
        (["models", "pull", "--al"], "edge models pull", "--al", "'--all'"),
        (["detect", "m", "a.jpg", "--jsn"], "edge detect", "--jsn", "'--json'"),
        (["run", "--config=x", "--log-jsn"], "edge run", "--log-jsn", "'--log-json'"),
    ],
    ids=["missing required", "beside the right one", "nested sub-command", "detect", "with ="],
)
def test_a_mistyped_flag_is_named_with_a_suggestion(
    argv: list[str], prog: str, flag: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        edge_main(argv)
    assert exc.value.code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"{prog}: error: unrecognized arguments: {flag} (did you mean {meant}" in err
    assert "required" not in err  # the typo, not what it left missing


def test_what_only_looks_like_an_unknown_flag_still_parses() -> None:
    p = edge_parser()
    assert p.parse_args(["run", "-cdevice.toml"]).config == Path("device.toml")  # -cFILE
    assert p.parse_args(["run", "--config=d.toml"]).config == Path("d.toml")
    args = p.parse_args(["models", "pull", "--all"])  # a parent leaves the check to its child
    assert args.all is True
    for prog, build in PARSERS.items():  # every parser still builds with the stricter class
        assert build().prog.startswith(prog.split()[0])
