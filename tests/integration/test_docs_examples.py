"""The example commands of README.md and docs/*.md that use the shipped sample inputs
(examples/media/, examples/configs/) run as written, from the repository's root, and find
what the docs say they find: a face and a person in photo.jpg, a cat in cat.jpg, text in
page.png, speech and the keyword in speech.wav; every example config validates with its
models. Commands on files a user brings (``./my-model``, ``bundles/…``) are not run here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SAMPLES = ("examples/media/", "examples/configs/")
FENCE = re.compile(r"^```(?:sh|bash|console)\n(.*?)^```", re.S | re.M)


def doc_commands() -> list[str]:
    """Every ``edge …`` line in a shell block of the docs that names a sample input and a
    zoo model (continuation lines joined, comments dropped), once each."""
    found: list[str] = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if len(words) < 3 or words[0] != "edge" or not any(s in line for s in SAMPLES):
                    continue
                if words[1] == "detect" and words[2].startswith(("./", "bundles/")):
                    continue  # a model the user brings
                cmd = shlex.join(words)
                if cmd not in found:
                    found.append(cmd)
    return found


COMMANDS = doc_commands()


def test_the_docs_have_sample_commands() -> None:
    """The parse found them: README's quick start and docs/detect.md's list at least."""
    assert len(COMMANDS) >= 10, COMMANDS
    assert any("silero-vad examples/media/speech.wav" in c for c in COMMANDS), COMMANDS
    assert "edge run --config examples/configs/wav.toml" in COMMANDS, COMMANDS
    untested = [
        c
        for c in COMMANDS
        if not c.startswith(("edge detect ", "edge validate-config "))
        and c != "edge run --config examples/configs/wav.toml"
    ]
    assert not untested, f"sample commands no test below runs: {untested}"


def _env(home: Path) -> dict[str, str]:
    from edge.models import zoo

    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(home))
    env["EDGEWISE_HOME"] = str(zoo.edgewise_home())  # the pulled models, not a fresh cache
    return env


def _edge(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _expected(model: str, path: str) -> set[str]:
    """The labels the docs promise for this model on this sample."""
    name = Path(path).name
    if model == "blazeface-short":
        return {"face"} if name == "photo.jpg" else set()
    if model == "nanodet-m":
        return {"cat"} if name == "cat.jpg" else {"person"}
    return {"ppocr-det": {"text"}, "silero-vad": {"speech"}, "okay-nabu": {"okay nabu"}}[model]


def _labels(doc: dict[str, Any]) -> set[str]:
    return {d["label"] for d in doc.get("detections", doc.get("segments", []))}


@pytest.mark.parametrize("command", [c for c in COMMANDS if " detect " in c])
def test_detect_example_finds_what_the_docs_say(command: str, tmp_path: Path) -> None:
    args = shlex.split(command)[1:]
    if "--draw" in args:  # written beside the test, not into the checkout
        args[args.index("--draw") + 1] = str(tmp_path / "out.png")
    proc = _edge([*args, "--json"] if "--json" not in args else args, REPO, _env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    model, source = args[1], args[2]
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if source.endswith("/"):  # a folder: one document per image, the face in photo.jpg
        by_name = {Path(d["input"]).name: d for d in docs}
        assert set(by_name) == {"photo.jpg", "cat.jpg", "page.png"}, by_name
        assert "face" in _labels(by_name["photo.jpg"])
    else:
        assert len(docs) == 1, proc.stdout
        assert _expected(model, source) <= _labels(docs[0]), (command, docs[0])
        assert _expected(model, source), command  # every sample command promises something
    if "--draw" in args:
        assert (tmp_path / "out.png").stat().st_size > 0


@pytest.mark.parametrize("command", [c for c in COMMANDS if " validate-config " in c])
def test_validate_example_as_written(command: str, tmp_path: Path) -> None:
    proc = _edge(shlex.split(command)[1:], REPO, _env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(": ok"), proc.stdout


@pytest.mark.parametrize("example", sorted((REPO / "examples" / "configs").glob("*.toml")))
def test_every_example_config_validates_with_its_models(example: Path, tmp_path: Path) -> None:
    """``edge validate-config`` as shipped, models included (pulled, hashes checked)."""
    proc = _edge(["validate-config", str(example.relative_to(REPO))], REPO, _env(tmp_path))
    assert proc.returncode == 0, proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_copy(tmp_path: Path, name: str, subs: dict[str, str]) -> list[dict[str, Any]]:
    """``edge run`` on examples/configs/NAME copied beside a link to the same
    examples/media/, so that its relative paths resolve as in the checkout and its
    events.jsonl lands in tmp_path; ``subs`` free its health port and the like."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "media").symlink_to(REPO / "examples" / "media")
    text = (REPO / "examples" / "configs" / name).read_text(encoding="utf-8")
    for old, new in subs.items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "configs" / name).write_text(text, encoding="utf-8")
    proc = _edge(["run", "--config", f"configs/{name}"], tmp_path, _env(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr  # the file ends, the daemon stops
    lines = (tmp_path / "configs" / "events.jsonl").read_text().split()
    return [json.loads(x) for x in lines]


def test_run_example_finds_speech(tmp_path: Path) -> None:
    """``edge run --config examples/configs/wav.toml`` (README's quick start)."""
    events = _run_copy(tmp_path, "wav.toml", {"port = 9481": f"port = {_free_port()}"})
    starts = [e for e in events if e["phase"] == "start"]
    assert [e["label"] for e in starts] == ["speech", "speech"], events


def test_video_example_finds_the_face(tmp_path: Path) -> None:
    """examples/configs/video.toml on examples/media/lobby.avi, played once at full speed
    instead of looped in real time: one face track, start to end."""
    subs = {
        "loop = true": "loop = false",
        "realtime = true": "realtime = false",
        "port = 9480": f"port = {_free_port()}",
        'data_dir = "~/.local/share/edgewise"': f'data_dir = "{tmp_path / "data"}"',
    }
    events = _run_copy(tmp_path, "video.toml", subs)
    phases = [(e["label"], e["phase"]) for e in events if e["phase"] != "update"]
    assert phases == [("face", "start"), ("face", "end")], events


TROUBLE = (REPO / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
BAD_PROFILE = """\
device_id = "t1"
profile = "raspberry-pi5"

[[streams]]
name = "a"
source = "speech.wav"
detectors = ["vad"]

[detectors.vad]
model = "silero-vad"
"""


def _stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if not line.startswith("INFO")]


def test_troubleshooting_wrong_profile_lines_are_current(tmp_path: Path) -> None:
    (tmp_path / "device.toml").write_text(BAD_PROFILE)
    shutil.copyfile(REPO / "examples" / "media" / "speech.wav", tmp_path / "speech.wav")
    env = _env(tmp_path)
    proc = _edge(["validate-config", "device.toml"], tmp_path, env)
    assert proc.returncode == 2 and _stderr_lines(proc)[0] in TROUBLE, proc.stderr
    argv = [sys.executable, "-m", "converters.cli", "blazeface-short"]
    argv += ["--profile", "raspberry-pi5", "--calibration", str(REPO / "examples" / "media")]
    convert = subprocess.run(
        [*argv, "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert convert.returncode == 2 and _stderr_lines(convert)[-1] in TROUBLE, convert.stderr


def test_troubleshooting_offline_folder_line_is_current(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = dict(_env(tmp_path), EDGEWISE_HOME=str(tmp_path / "cache"))  # nothing pulled yet
    proc = _edge(["models", "pull", "nanodet-m", "--from", "./empty"], tmp_path, env)
    assert proc.returncode == 2 and _stderr_lines(proc)[-1] in TROUBLE, proc.stderr


def test_troubleshooting_delegate_lines_are_current(tmp_path: Path) -> None:
    photo = str(REPO / "examples" / "media" / "photo.jpg")
    args = ["detect", "blazeface-short", photo, "--provider", "libedgetpu.so.1"]
    fallback = _edge(args, tmp_path, _env(tmp_path))
    assert fallback.returncode == 0, fallback.stderr
    warning = [line for line in fallback.stderr.splitlines() if line.startswith("WARNING")]
    assert warning and warning[0] in TROUBLE, fallback.stderr
    strict = _edge([*args, "--accelerator-strict"], tmp_path, _env(tmp_path))
    assert strict.returncode == 2, strict.stderr
    line = _stderr_lines(strict)[-1]
    # the page shortens the cache path to "…/models/…"
    assert "…" + line[line.index("/models/") :] in TROUBLE, line
