"""``edge examples``: the shipped examples copied out, never over a user's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import examples_cmd
from edge.cli.main import main
from tests.conftest import REPO


def test_the_checkouts_examples_folder_is_the_shipped_one() -> None:
    assert (REPO / "examples").resolve() == examples_cmd.SHIPPED
    names = {str(p) for p in examples_cmd.shipped_files()}
    assert {"configs/wav.toml", "media/photo.jpg", "mosquitto/acl"} <= names


def test_copies_every_file_and_the_copy_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ex"
    assert main(["examples", str(dest)]) == 0
    for rel in examples_cmd.shipped_files():
        assert (dest / rel).read_bytes() == (examples_cmd.SHIPPED / rel).read_bytes(), rel
    assert f"{dest}: wrote {len(examples_cmd.shipped_files())} files" in capsys.readouterr().out
    # the configs' relative paths find the copied media
    assert main(["validate-config", str(dest / "configs" / "wav.toml"), "--no-models"]) == 0


def test_a_folder_with_files_is_refused_and_force_keeps_the_users_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ex"
    dest.mkdir()
    (dest / "mine.toml").write_text("kept")
    assert main(["examples", str(dest)]) == 3
    err = capsys.readouterr().err
    assert f"{dest}: already holds files; choose another DIR, or --force" in err, err
    assert [p.name for p in dest.iterdir()] == ["mine.toml"]  # nothing written
    (dest / "configs").mkdir()
    (dest / "configs" / "wav.toml").write_text("edited")
    assert main(["examples", str(dest), "--force"]) == 0
    assert (dest / "mine.toml").read_text() == "kept"
    wav = (examples_cmd.SHIPPED / "configs" / "wav.toml").read_text()
    assert (dest / "configs" / "wav.toml").read_text() == wav


def test_a_file_or_an_unwritable_target_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["examples", str(tmp_path / "f")]) == 3
    assert "f: exists and is not a folder; choose another DIR" in capsys.readouterr().err
    assert main(["examples", str(tmp_path / "f" / "sub")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and "choose another DIR" in err[0], err
