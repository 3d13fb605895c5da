"""Ultralytics' own pipeline as a reference, run in its isolated venv (not edgewise's).

``run_reference(model, images, imgsz)`` runs this file with the venv's Python: for each
image it writes Ultralytics' ``LetterBox`` tensor (RGB, CHW, float32 / 255, as its
predictor feeds the model) to ``<image>.letterbox.npy`` and returns its detections
from ``YOLO(model, task="detect").predict`` (onnxruntime; no weights are downloaded:
``YOLO_OFFLINE=1`` and a private settings folder keep it off the network).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ULTRALYTICS = "8.4.190"
REQUIREMENTS = (
    "torch==2.14.1",  # the PyPI build (CUDA libraries, runs on the CPU): torchvision needs it
    "torchvision==0.29.1",
    f"ultralytics=={ULTRALYTICS}",
    "onnxruntime==1.32.0",
)
VENV = f"refs-ultralytics-{ULTRALYTICS}"


def run_reference(
    model: Path,
    images: list[Path],
    imgsz: int,
    *,
    iou: float = 0.7,
    agnostic: bool = False,
    timeout: float = 600,
) -> list[dict[str, Any]]:
    """Ultralytics' detections per image: ``{"boxes": [[x1,y1,x2,y2]], "conf", "cls"}``, with
    its ``predict`` defaults (``conf=0.25``, ``max_det=300``) and ``iou`` / ``agnostic_nms``."""
    from tests.support.ref_venv import RefVenvError, ensure_venv

    python = ensure_venv(VENV, REQUIREMENTS)
    cfg = images[0].parent / "ultralytics-settings"
    cfg.mkdir(exist_ok=True)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cfg), "YOLO_VERBOSE": "0"}
    env.pop("PYTHONPATH", None)
    args = [str(python), __file__, str(model), str(imgsz), str(iou), "1" if agnostic else "0"]
    proc = subprocess.run(  # our argv, no shell
        [*args, *map(str, images)],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RefVenvError(f"ultralytics reference failed: {proc.stderr.strip()[-2000:]}")
    out: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _main(argv: list[str]) -> None:  # runs inside the reference venv
    import cv2
    import numpy as np
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox

    model, imgsz, iou, agnostic, paths = (
        argv[0],
        int(argv[1]),
        float(argv[2]),
        argv[3] == "1",
        argv[4:],
    )
    yolo = YOLO(model, task="detect")
    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=False)
    results = []
    for p in paths:
        img = cv2.imread(p)
        boxed = letterbox(image=img)
        tensor = (boxed[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
        np.save(p + ".letterbox.npy", np.ascontiguousarray(tensor))
        r = yolo.predict(
            img, imgsz=imgsz, conf=0.25, iou=iou, agnostic_nms=agnostic, max_det=300, verbose=False
        )[0]
        results.append({
            "boxes": r.boxes.xyxy.numpy().tolist(),
            "conf": r.boxes.conf.numpy().tolist(),
            "cls": r.boxes.cls.numpy().astype(int).tolist(),
        })  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    _main(sys.argv[1:])
