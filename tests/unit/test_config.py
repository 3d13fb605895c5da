"""Device config: every example validates; each kind of mistake is reported as file:line key."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.cli.main import main
from edge.config import InvalidConfigError, key_lines, load_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples" / "configs").glob("*.toml"))

GOOD = """\
device_id = "t1"

[[streams]]
name = "a"
source = "clip.avi"
detectors = ["face"]

[[streams]]
name = "b"
source = "talk.wav"
detectors = ["vad"]

[detectors.face]
model = "blazeface-short"

[detectors.vad]
model = "silero-vad"
"""


def _media(folder: Path) -> None:
    """The files the examples name, made small: a video, a WAV, a folder with one image."""
    (folder / "media" / "stills").mkdir(parents=True)
    img = np.full((48, 64, 3), 127, np.uint8)
    cv2.imwrite(str(folder / "media" / "stills" / "a.png"), img)
    vw = cv2.VideoWriter(
        str(folder / "media" / "lobby.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48)
    )
    vw.write(img)
    vw.release()
    with wave.open(str(folder / "media" / "speech.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, np.int16).tobytes())


def test_there_is_an_example_for_each_kind_of_source() -> None:
    kinds = {load_config(p).streams[0].source_type for p in EXAMPLES}
    kinds |= {s.source_type for p in EXAMPLES for s in load_config(p).streams}
    assert kinds == {"camera", "video", "url", "images", "wav", "mic"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(example, tmp_path / example.name)
    _media(tmp_path)
    assert main(["validate-config", "--no-models", str(tmp_path / example.name)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def _problems(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[str]:
    cfg = tmp_path / "device.toml"
    cfg.write_text(text)
    for name in ("clip.avi", "talk.wav"):
        (tmp_path / name).write_bytes(b"x")
    code = main(["validate-config", *extra, str(cfg)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert (code == 0) == (not lines)
    return lines


def test_good_config_has_no_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _problems(tmp_path, GOOD, capsys, "--no-models") == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown key in the second [[streams]] table: line 12
        (
            lambda t: t.replace('detectors = ["vad"]', 'detectors = ["vad"]\nfsp = 3'),
            ":12 streams.1.fsp: unknown key",
        ),
        # wrong type: line 4
        (
            lambda t: t.replace('name = "a"', "name = 5"),
            ":4 streams.0.name: Input should be a valid string",
        ),
        # a stream names a detector that has no table: the stream's header, line 8
        (lambda t: t.replace('["vad"]', '["kws"]'), "stream 'b' names detector 'kws'"),
        # unknown key at the top
        (lambda t: "devise = 1\n" + t, ":1 devise: unknown key"),
        # wrong type in a nested table: line 15
        (
            lambda t: t.replace(
                'model = "blazeface-short"', 'model = "blazeface-short"\nthreads = "two"'
            ),
            ":15 detectors.face.threads: Input should be a valid integer",
        ),
        # unparseable TOML
        (lambda t: t.replace("[[streams]]", "[[streams]", 1), ":3 (toml)"),
    ],
)
def test_each_problem_names_file_line_and_key(
    edit: object, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(tmp_path, edit(GOOD), capsys, "--no-models")  # type: ignore[operator]
    assert any(expected in line for line in lines), lines
    assert all(line.startswith(str(tmp_path / "device.toml") + ":") for line in lines)


def test_unknown_zoo_model_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace('model = "silero-vad"', 'model = "silero-vadd"')
    lines = _problems(tmp_path, text, capsys)
    assert len(lines) == 1
    assert ":17 detectors.vad.model:" in lines[0] and "silero-vadd" in lines[0]


def test_missing_source_file_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("clip.avi", "nowhere.avi")
    lines = _problems(tmp_path, text, capsys, "--no-models")
    assert lines == [
        f"{tmp_path / 'device.toml'}:5 streams.0.source: {tmp_path / 'nowhere.avi'} not found"
    ]


def test_load_config_raises_with_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text(
        GOOD.replace('name = "a"', 'name = "a"\nfoo = 1').replace(
            "[detectors.vad]", "[detectors.vad]\nbar = 2"
        )
    )
    with pytest.raises(InvalidConfigError) as info:
        load_config(cfg)
    assert [p.split(" ")[0].rsplit(":", 1)[1] for p in info.value.problems] == ["5", "18"]


def test_key_lines_counts_arrays_of_tables() -> None:
    lines = key_lines(GOOD)
    assert lines[("streams", "1", "source")] == 10
    assert lines[("detectors", "vad", "model")] == 17


# --- the device profile sets detector defaults --------------------------------------------


def _resolved(fmt: str) -> Any:
    from edge.models import zoo
    from edge.models.resolve import ResolvedModel

    name = "ppocr-det" if fmt == "onnx" else "blazeface-short"
    return ResolvedModel(zoo.get(name), Path("unused"), name)


def test_profile_supplies_threads_and_providers_for_its_own_runtime() -> None:
    from edge.config import DetectorConfig
    from edge.pipeline.slots import backend_options
    from edge.profiles import get_profile

    pi5 = get_profile("raspberry-pi-5")  # TFLite, XNNPACK, 4 threads
    assert pi5.runtime.name == "tflite"
    tfl, onnx = _resolved("tflite"), _resolved("onnx")
    assert backend_options(DetectorConfig(model="m"), tfl, pi5) == (
        "tflite",
        pi5.runtime.threads,
        tuple(pi5.runtime.providers),
    )
    # an ONNX model on a TFLite profile: the profile's delegates do not apply
    assert backend_options(DetectorConfig(model="m"), onnx, pi5) == ("onnxruntime", 1, ())
    # the detector's own settings win
    own = DetectorConfig(model="m", threads=2, providers=["CPUExecutionProvider"])
    assert backend_options(own, onnx, get_profile("x86-64-vnni")) == (
        "onnxruntime",
        2,
        ("CPUExecutionProvider",),
    )
    assert backend_options(DetectorConfig(model="m"), tfl, None) == ("tflite", 1, ())


def test_unknown_profile_is_a_config_error(tmp_path: Path) -> None:
    from edge.config import load_config

    path = tmp_path / "device.toml"
    path.write_text(
        'device_id = "d"\nprofile = "raspberry-pi-9"\n'
        '[[streams]]\nname = "s"\nsource = "0"\ndetectors = ["face"]\n'
        '[detectors.face]\nmodel = "blazeface-short"\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "unknown profile 'raspberry-pi-9'" in str(exc.value)
