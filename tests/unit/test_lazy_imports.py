"""Cold start: ``edge detect`` imports only what its model needs (bench/bench_cold_start.py).

Each check runs the real command in a fresh interpreter and lists the heavy modules it
loaded; in-process ``sys.modules`` would already hold everything the test session imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / "examples" / "media" / "photo.jpg"
PROBE = """
import json, sys
from edge.cli.main import build_parser, main
if sys.argv[1] == "--parse-only":  # the parser of every command, no command run
    build_parser().parse_args(sys.argv[2:])
    rc = 0
else:
    rc = main(sys.argv[1:])
names = ("edge.config", "edge.sinks", "edge.daemon", "edge.health", "onnxruntime", "paho",
         "cloud_sync", "ai_edge_litert", "cv2")
print("LOADED " + json.dumps({"rc": rc, "loaded": [n for n in names if n in sys.modules]}),
      file=sys.stderr)
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=60
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("LOADED ")]
    assert lines, res.stderr[-2000:]
    doc = json.loads(lines[-1].removeprefix("LOADED "))
    return doc["rc"], set(doc["loaded"])


@pytest.mark.usefixtures("zoo_model")
def test_detect_with_a_tflite_model_loads_no_daemon_config_or_onnxruntime(
    models_home: Path,
) -> None:
    rc, loaded = _loaded(
        "-q", "detect", "blazeface-short", str(PHOTO), "--json", "--home", str(models_home)
    )
    assert rc == 0
    assert {"ai_edge_litert", "cv2"} <= loaded  # the probe sees what the model does need
    assert not loaded & {"edge.config", "edge.sinks", "edge.daemon", "edge.health"}
    assert not loaded & {"onnxruntime", "paho", "cloud_sync"}


def test_building_the_parser_loads_no_daemon_config_or_runtime() -> None:
    rc, loaded = _loaded("--parse-only", "run", "--config", "device.toml")
    assert rc == 0
    assert not loaded & {"edge.config", "edge.sinks", "edge.daemon", "onnxruntime", "cv2"}
    assert not loaded & {"ai_edge_litert", "paho", "cloud_sync"}


def _device_config(tmp_path: Path, stream: str, detector: str) -> Path:
    cfg = tmp_path / "device.toml"
    cfg.write_text(
        f'device_id = "lazy"\ndata_dir = "{tmp_path / "data"}"\n'
        f"[[streams]]\n{stream}\n"
        f"[detectors.d]\n{detector}\n"
        f'[[sinks]]\ntype = "jsonl"\npath = "{tmp_path / "ev.jsonl"}"\n'
        "[health]\nenabled = false\n"
    )
    return cfg


@pytest.mark.usefixtures("zoo_model")
def test_an_audio_only_daemon_never_loads_opencv_nor_litert(tmp_path: Path) -> None:
    """A WAV and Silero VAD (ONNX), read to its end: OpenCV and LiteRT stay unloaded."""
    wav = REPO / "examples" / "media" / "speech.wav"
    cfg = _device_config(
        tmp_path,
        f'name = "a"\nsource = "{wav}"\ndetectors = ["d"]',
        'model = "silero-vad"',
    )
    rc, loaded = _loaded("-q", "run", "--config", str(cfg))
    assert rc == 0
    assert (tmp_path / "ev.jsonl").read_text().strip()  # it did detect speech
    assert "onnxruntime" in loaded  # the probe sees the runtime the model needs
    assert not loaded & {"cv2", "ai_edge_litert", "paho", "cloud_sync"}


@pytest.mark.usefixtures("zoo_model")
def test_a_tflite_video_daemon_never_loads_onnxruntime(tmp_path: Path) -> None:
    video = REPO / "examples" / "media" / "lobby.avi"
    cfg = _device_config(
        tmp_path,
        f'name = "v"\nsource = "{video}"\ndetectors = ["d"]',
        'model = "blazeface-short"',
    )
    rc, loaded = _loaded("-q", "run", "--config", str(cfg))
    assert rc == 0
    assert {"cv2", "ai_edge_litert"} <= loaded
    assert not loaded & {"onnxruntime", "paho", "cloud_sync"}


def test_every_registered_decoder_module_imports_on_first_use() -> None:
    """The lazy registry names modules by string: a misspelt one fails here, not on a device."""
    from pydantic import BaseModel

    from edge.detectors import DECODERS

    for name, entry in DECODERS.items():
        assert issubclass(entry.params, BaseModel), name
        assert callable(entry.build), name
