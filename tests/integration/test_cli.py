"""`edge models|detect|bench` as a user runs them: real models, real media, and every
kind of bad input giving one line on stderr, a non-zero exit and no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import skimage.data

from edge.boxes import iou
from edge.models.resolve import ResolvedModel
from tests.conftest import FIXTURES

EDGE = [sys.executable, "-m", "edge.cli.main"]
# The astronaut's face in skimage.data.astronaut() (512×512), read by eye.
ASTRONAUT_FACE = (179.0, 75.0, 267.0, 175.0)


def edge(
    *args: str | Path, ok: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*EDGE, *map(str, args)], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def fails(*args: str | Path, match: str) -> str:
    proc = edge(*args, ok=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edge: error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert match in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def byo_model(
    tmp_path_factory: pytest.TempPathFactory, zoo_model: Callable[[str], ResolvedModel]
) -> Path:
    """A model the user brings: a folder with a .tflite and a manifest.json beside it."""
    src = zoo_model("blazeface-short")
    folder = tmp_path_factory.mktemp("my-model")
    shutil.copy(src.path, folder / "detector.tflite")
    data = src.manifest.model_dump(mode="json", exclude_none=True)
    data.pop("source")
    data.update(name="my-face-detector", version="7", file="detector.tflite")
    (folder / "manifest.json").write_text(json.dumps(data, indent=2))
    return folder


def test_models_list_json_names_every_model() -> None:
    doc = json.loads(edge("models", "list", "--json").stdout)
    rows = {r["name"]: r for r in doc["models"]}
    assert {"blazeface-short", "blazeface-full", "ppocr-det", "silero-vad"} <= set(rows)
    for r in rows.values():
        assert r["license"] and r["source"] and len(r["sha256"]) == 64 and r["size"] > 0


def test_detect_face_json_and_draw(astronaut: Path, tmp_path: Path) -> None:
    out = tmp_path / "drawn.png"
    doc = json.loads(edge("detect", "blazeface-short", astronaut, "--json", "--draw", out).stdout)
    assert doc["model"] == "blazeface-short" and doc["input"] == str(astronaut)
    (face,) = doc["detections"]
    assert face["label"] == "face" and face["score"] > 0.7
    assert iou(tuple(face["box"]), ASTRONAUT_FACE) >= 0.7
    assert len(face["keypoints"]) == 6
    assert {"pre", "invoke", "post"} <= set(doc["timing_ms"])
    drawn = cv2.imread(str(out))
    assert drawn.shape == (512, 512, 3)
    assert np.abs(drawn.astype(int) - cv2.imread(str(astronaut)).astype(int)).sum() > 0


def test_detect_text(tmp_path: Path) -> None:
    from tests.fixtures.text_scene import astronaut_scene

    image, truth = astronaut_scene()
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), image)
    doc = json.loads(edge("detect", "ppocr-det", path, "--json").stdout)
    boxes = [tuple(d["box"]) for d in doc["detections"]]
    for t in truth:
        assert max(iou(t, b) for b in boxes) >= 0.5


def test_detect_speech_segments() -> None:
    doc = json.loads(edge("detect", "silero-vad", FIXTURES / "speech_16k.wav", "--json").stdout)
    assert doc["segments"], doc
    for s in doc["segments"]:
        assert s["label"] == "speech" and 0 <= s["start"] < s["end"] <= doc["duration"]


def test_bring_your_own_model_by_manifest(byo_model: Path, astronaut: Path) -> None:
    doc = json.loads(edge("detect", byo_model / "manifest.json", astronaut, "--json").stdout)
    assert doc["model"] == "my-face-detector" and len(doc["detections"]) == 1
    doc = json.loads(edge("detect", byo_model, astronaut, "--json").stdout)  # the folder works too
    assert len(doc["detections"]) == 1


def test_bench_prints_stages() -> None:
    doc = json.loads(
        edge("bench", "blazeface-short", "--runs", "20", "--warmup", "2", "--json").stdout
    )
    assert {"pre", "invoke", "post", "e2e", "bare_invoke"} <= set(doc["median_ms"])
    assert doc["ratio_e2e_to_invoke"] > 0


# --- bad input ---------------------------------------------------------------------------


def _wav(path: Path, channels: int, rate: int, width: int, seconds: float = 1.0) -> Path:
    """A tone as PCM WAV with ``width`` bytes per sample (24-bit packs 3 bytes)."""
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (2 ** (8 * width - 1) - 1)).astype("<i4")
    frames = np.repeat(x[:, None], channels, axis=1).reshape(-1)
    raw = frames.view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def test_missing_input(tmp_path: Path) -> None:
    fails("detect", "blazeface-short", tmp_path / "nope.jpg", match="nope.jpg: file not found")


def test_not_an_image(tmp_path: Path) -> None:
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(os.urandom(2048))
    fails("detect", "blazeface-short", bad, match="photo.jpg: not a readable image")


def test_audio_given_to_an_image_model() -> None:
    msg = fails(
        "detect", "blazeface-short", FIXTURES / "speech_16k.wav", match="not a readable image"
    )
    assert "audio" in msg


def test_image_given_to_an_audio_model(astronaut: Path) -> None:
    fails("detect", "silero-vad", astronaut, match="astronaut.jpg: not a WAV file")


def test_unknown_model() -> None:
    fails("detect", "yolo-v42", "x.jpg", match="unknown model 'yolo-v42'")


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "cannot load"), (b"TFL3" + os.urandom(4096), "cannot load")],
)
def test_broken_model_behind_a_manifest(
    byo_model: Path, astronaut: Path, tmp_path: Path, content: bytes, match: str
) -> None:
    import hashlib

    folder = tmp_path / "m"
    shutil.copytree(byo_model, folder)
    (folder / "detector.tflite").write_bytes(content)
    data = json.loads((folder / "manifest.json").read_text())
    data["sha256"] = hashlib.sha256(content).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(data))
    fails("detect", folder, astronaut, match=match)


def test_truncated_model_fails_its_hash(byo_model: Path, astronaut: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(byo_model, folder)
    model = folder / "detector.tflite"
    model.write_bytes(model.read_bytes()[:5000])
    fails("detect", folder, astronaut, match="sha256 is")


def test_manifest_with_a_wrong_decoder(byo_model: Path, astronaut: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(byo_model, folder)
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    data["decoder"]["type"] = "ssd_anchors"
    (folder / "manifest.json").write_text(json.dumps(data))
    fails("detect", folder, astronaut, match="decoder.type: unknown decoder 'ssd_anchors'")


def test_manifest_with_a_wrong_field(byo_model: Path, astronaut: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(byo_model, folder)
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    data["input"]["layout"] = "CHW"
    (folder / "manifest.json").write_text(json.dumps(data))
    fails("detect", folder, astronaut, match="input.image.layout")


def test_cached_zoo_file_with_a_sha_mismatch_is_pulled_again(
    zoo_model: Callable[[str], ResolvedModel], astronaut: Path, tmp_path: Path
) -> None:
    src = zoo_model("blazeface-short")
    home = tmp_path / "home"
    target = home / "models" / "blazeface-short" / src.manifest.version / src.manifest.file
    target.parent.mkdir(parents=True)
    target.write_bytes(src.path.read_bytes()[:-10] + b"0123456789")
    env = {**os.environ, "EDGEWISE_HOME": str(home)}
    proc = edge("detect", "blazeface-short", astronaut, "--json", env=env)
    assert "pulling it again" in proc.stderr
    assert len(json.loads(proc.stdout)["detections"]) == 1
    assert target.read_bytes() == src.path.read_bytes()


@pytest.mark.parametrize(
    ("channels", "rate", "width"), [(2, 16000, 2), (1, 8000, 2), (1, 16000, 3), (2, 44100, 3)]
)
def test_odd_wav_formats_are_handled(tmp_path: Path, channels: int, rate: int, width: int) -> None:
    path = _wav(tmp_path / "tone.wav", channels, rate, width)
    doc = json.loads(edge("detect", "silero-vad", path, "--json").stdout)
    assert doc["duration"] == pytest.approx(1.0, abs=0.01)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = edge("--debug", "detect", "blazeface-short", tmp_path / "nope.jpg", ok=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
