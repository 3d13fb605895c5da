"""The wheel, built (through an sdist) from the tracked files and installed in a fresh venv
outside the checkout, runs the commands a new user types: what `pip install -e .` hides
(package data that is found only beside a source tree) fails here.

The venv sees this interpreter's site-packages through a ``.pth`` line, so the dependencies
are not downloaded again; ``.pth`` files inside that folder are not run, so the editable
install's finder there does not load the checkout. Every command runs from a temporary
folder without ``PYTHONPATH``, and the test asserts that ``edge`` is imported from the venv.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from edge import __version__
from edge.demo.broker import free_port
from edge.models import zoo
from tests.integration.hub_support import http, mosquitto

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "converters", "cloud_sync")
# what the code reads beside its modules; each must be in the wheel (and non-empty here)
DATA = ("edge/device_profiles", "edge/models/zoo", "edge/models/zoo/references",
        "edge/demo/media", "edge/examples/configs", "edge/examples/media",
        "edge/examples/mosquitto", "cloud_sync/schemas", "cloud_sync/hub/static",
        "cloud_sync/hub/static/js")  # fmt: skip


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site: Path  # the venv's site-packages, where the wheel went
    cwd: Path  # a folder outside the checkout to run from
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        exe = self.venv / "bin" / argv[0]
        return subprocess.run(
            [str(exe), *argv[1:]], cwd=self.cwd, env=self.env, capture_output=True,
            text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def ok(self, *argv: str) -> str:
        r = self.run(*argv)
        assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout


def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, text=True
    ).stdout
    return [p for p in out.split("\0") if p]


def _copy_tracked(dst: Path) -> None:
    """What a clean clone holds (no build/, egg-info or caches that could leak into it)."""
    for rel in _tracked():
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree, not yet committed
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            (dst / rel).symlink_to(src.readlink())
        else:
            shutil.copy2(src, dst / rel)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EDGEWISE_"))}
    env.pop("VIRTUAL_ENV", None)
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    have = Version(metadata.version("setuptools"))
    if have < Version("77"):
        pytest.fail(
            f"setuptools {have} cannot build the wheel (the SPDX licence needs >= 77): "
            "pip install -e '.[dev]'"
        )
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv, cwd = tmp / "src", tmp / "dist", tmp / "venv", tmp / "cwd"
    cwd.mkdir()
    _copy_tracked(src)
    build_env = dict(os.environ)  # PYTHONPATH may be where setuptools comes from
    # sdist first, then the wheel from the unpacked sdist, as `python -m build` does: what
    # the sdist leaves out is then missing from the wheel too
    sdist = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b;"
         "print(b.build_sdist(sys.argv[1]))", str(dist)],
        cwd=src, env=build_env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert sdist.returncode == 0, sdist.stdout + sdist.stderr
    with tarfile.open(dist / sdist.stdout.splitlines()[-1]) as tf:
        tf.extractall(tmp / "sdist", filter="data")
    (unpacked,) = (tmp / "sdist").iterdir()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist), str(unpacked)],
        cwd=tmp, env=build_env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("edgewise-*.whl")

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
         "-q", str(wheel)],
        cwd=tmp, env=_clean_env(), capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=_clean_env(), capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # only now, after pip: the shared dependencies (and its edgewise.dist-info) come after
    # the venv's own site-packages
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_shared_deps.pth").write_text("".join(f"{p}\n" for p in sorted(shared)))
    env = _clean_env(
        EDGEWISE_HOME=str(zoo.edgewise_home()),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    yield Installed(wheel, venv, site, cwd, env)


def test_the_wheel_holds_every_data_file_the_code_reads(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    tracked = _tracked()
    for folder in DATA:
        here = [p for p in tracked if Path(p).parent == Path(folder)]
        assert here, f"{folder}: nothing tracked (moved? update DATA)"
        missing = sorted(set(here) - names)
        assert not missing, f"not in the wheel: {missing}"
    # and in general: every tracked non-Python file inside a package (a new data folder too)
    data = [p for p in tracked if p.split("/")[0] in PACKAGES and not p.endswith(".py")]
    assert not sorted(set(data) - names), sorted(set(data) - names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "scripts/"))]
    # the licence: its text (PEP 639's licenses/ folder) and its SPDX expression
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE")], "no LICENSE"
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(installed.wheel).read(meta).decode()


def test_it_imports_from_the_venv_not_the_checkout(installed: Installed) -> None:
    out = installed.ok(
        "python", "-c", "import edge, converters, cloud_sync, edge.profiles as p, sys;"
        "print(edge.__file__, converters.__file__, cloud_sync.__file__, p.PROFILES_DIR);"
        "print(*sys.path, sep='\\n')",
    )  # fmt: skip
    files, *path = out.splitlines()
    for f in files.split():
        assert Path(f).is_relative_to(installed.site), f
        assert not Path(f).is_relative_to(REPO), f
    assert str(REPO) not in path


def test_version_of_each_command(installed: Installed) -> None:
    assert installed.wheel.name.startswith(f"edgewise-{__version__}-")
    for cmd in ("edge", "edge-convert", "edge-hub"):
        assert installed.ok(cmd, "--version") == f"edgewise {__version__}\n"


def test_list_profiles(installed: Installed) -> None:
    shipped = {p.stem for p in (REPO / "edge" / "device_profiles").glob("*.toml")}
    assert {"raspberry-pi-5", "jetson-orin-nano"} <= shipped
    listed = json.loads(installed.ok("edge-convert", "--list-profiles", "--json"))
    assert {p["name"] for p in listed} == shipped
    table = installed.ok("edge-convert", "--list-profiles")
    assert all(name in table for name in shipped)


def test_doctor_names_a_profile_and_every_zoo_model(installed: Installed) -> None:
    out = installed.ok("edge", "doctor")
    lines = out.splitlines()
    assert any(line.startswith("profile ") for line in lines), out
    for model in (p.stem for p in (REPO / "edge" / "models" / "zoo").glob("*.json")):
        assert any(line.split()[:1] == [model] for line in lines), f"{model} missing:\n{out}"


@pytest.mark.parametrize(
    ("model", "image", "label"),
    [("nanodet-m", "cat_chelsea.jpg", "cat"), ("blazeface-short", "face_astronaut.jpg", "face")],
)
def test_detect_on_the_shipped_demo_media(
    installed: Installed, model: str, image: str, label: str
) -> None:
    photo = installed.site / "edge" / "demo" / "media" / image  # the wheel's copy
    out = json.loads(installed.ok("edge", "detect", model, str(photo), "--json"))
    assert out["model"] == model
    best = max(out["detections"], key=lambda d: d["score"])
    assert best["label"] == label and best["score"] > 0.4, out


def test_a_config_naming_a_profile_validates_and_a_wrong_name_lists_them(
    installed: Installed,
) -> None:
    config = installed.cwd / "device.toml"
    body = (
        'device_id = "wheel-01"\n[[streams]]\nname = "photos"\nsource = "{src}"\n'
        'type = "images"\ndetectors = ["cats"]\n[detectors.cats]\nmodel = "nanodet-m"\n'
        '[[sinks]]\ntype = "stdout"\n'
    ).format(src=installed.site / "edge" / "demo" / "media")
    config.write_text(f'profile = "raspberry-pi-5"\n{body}')
    installed.ok("edge", "validate-config", str(config))
    config.write_text(f'profile = "raspberry-pi-9"\n{body}')
    r = installed.run("edge", "validate-config", str(config))
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "unknown profile 'raspberry-pi-9' (did you mean 'raspberry-pi-5'" in err, err
    assert "; choose one of " in err and "raspberry-pi-5" in err.split("choose one of ")[1]
    assert "raspberry-pi-5" in r.stdout + r.stderr


def test_the_hub_serves_its_dashboard_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    with mosquitto(tmp_path) as mqtt_port:
        log = (tmp_path / "hub.log").open("w")
        hub = subprocess.Popen(
            [str(installed.venv / "bin" / "edge-hub"), "serve", "--db",
             f"sqlite:///{tmp_path / 'hub.db'}", "--mqtt-port", str(mqtt_port),
             "--http-port", str(port)],
            cwd=installed.cwd, env=installed.env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            t0 = time.monotonic()
            while True:
                try:
                    if http(f"http://127.0.0.1:{port}/healthz")[1]["mqtt_connected"]:
                        break
                except (OSError, TypeError, KeyError):
                    pass
                assert hub.poll() is None, (tmp_path / "hub.log").read_text()
                assert time.monotonic() - t0 < 20, (tmp_path / "hub.log").read_text()
                time.sleep(0.1)
            for path in ("/static/dashboard.html", "/static/js/core.js"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                    body = r.read()
                shipped = installed.site / "cloud_sync" / "hub" / path.removeprefix("/")
                assert body == shipped.read_bytes()
        finally:
            hub.terminate()
            hub.wait(10)
            log.close()


README_SAMPLES = re.compile(r"^edge (?:detect|validate-config|run) .*examples/")


def _readme_sample_commands() -> list[list[str]]:
    """The quick start's ``edge …`` lines on the sample inputs, as README.md writes them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [shlex.split(x, comments=True) for x in text.splitlines() if README_SAMPLES.match(x)]


def test_the_readme_sample_commands_run_from_the_wheel_after_edge_examples(
    installed: Installed, tmp_path: Path
) -> None:
    """What a user without the checkout types: ``edge examples``, then the README's quick
    start as written, from the same folder; each finds what the README says."""
    commands = _readme_sample_commands()
    assert len(commands) >= 5, commands  # the parse found the quick start
    user = installed.cwd / "user"
    user.mkdir()
    run = functools.partial(_run_in, installed, user, tmp_path / "home")
    out = run("edge", "examples")
    assert out.returncode == 0, out.stderr
    assert (user / "examples" / "media" / "photo.jpg").is_file(), out.stdout
    assert run("edge", "examples").returncode == 3  # a second copy is refused, not merged
    wav = user / "examples" / "configs" / "wav.toml"  # its health port, free for this run
    wav.write_text(wav.read_text().replace("port = 9481", f"port = {free_port()}"))
    expected = {"photo.jpg": "face", "cat.jpg": "cat", "speech.wav": "speech"}
    for argv in commands:
        proc = run(*argv)
        assert proc.returncode == 0, f"{shlex.join(argv)}: exit {proc.returncode}\n{proc.stderr}"
        if argv[1] == "detect":
            doc = json.loads(proc.stdout)
            labels = {d["label"] for d in doc.get("detections", doc.get("segments", []))}
            assert expected[Path(argv[3]).name] in labels, (argv, doc)
        elif argv[1] == "validate-config":
            assert proc.stdout.strip().endswith(": ok"), proc.stdout
        else:
            events = (user / "examples" / "configs" / "events.jsonl").read_text().split()
            starts = [e for e in map(json.loads, events) if e["phase"] == "start"]
            assert [e["label"] for e in starts] == ["speech", "speech"], events


def _run_in(
    installed: Installed, cwd: Path, home: Path, *argv: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.venv / "bin" / argv[0]), *argv[1:]], cwd=cwd,
        env={**installed.env, "HOME": str(home)}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
