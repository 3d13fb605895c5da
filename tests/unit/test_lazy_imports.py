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
