"""MediaPipe's own face detection graph on .npy RGB images; runs INSIDE the reference venv.

    python mediapipe_face_ref.py MODEL.tflite short|full THRESHOLD IMAGE.npy...

Runs ``mediapipe.solutions.face_detection`` (mediapipe 0.10.21: the
``face_detection_{short,full}_range_cpu`` graph, ImageToTensor → TFLite → tensors to
detections → weighted NMS → projection back to the image) with MODEL.tflite put in place
of the graph's bundled model file (the graph is MediaPipe's, unchanged). Prints JSON:
one list per image of {score, box [x1, y1, x2, y2], keypoints [[x, y]] * 6} in image
pixels. Imports nothing from edgewise: it runs under the venv's own python.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

# the file name each graph loads, relative to the resource root
GRAPH_MODEL = {
    "short": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "full": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
}


def main(argv: list[str]) -> int:
    model, which, threshold, images = argv[0], argv[1], float(argv[2]), argv[3:]
    from mediapipe.python import solution_base
    from mediapipe.python._framework_bindings import resource_util
    from mediapipe.python.solutions import face_detection

    with tempfile.TemporaryDirectory() as root:
        target = Path(root) / GRAPH_MODEL[which]
        target.parent.mkdir(parents=True)
        target.symlink_to(Path(model).resolve())

        class _Resources:
            """solution_base points the resource root at the wheel; point it here."""

            @staticmethod
            def set_resource_dir(_path: str) -> None:
                resource_util.set_resource_dir(root)

        solution_base.resource_util = _Resources  # type: ignore[assignment]
        out = []
        with face_detection.FaceDetection(
            model_selection=0 if which == "short" else 1, min_detection_confidence=threshold
        ) as fd:
            for path in images:
                rgb = np.load(path)
                h, w = rgb.shape[:2]
                res = fd.process(rgb)
                dets = []
                for d in res.detections or []:
                    b = d.location_data.relative_bounding_box
                    kps = [[k.x * w, k.y * h] for k in d.location_data.relative_keypoints]
                    box = [b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h]
                    dets.append({"score": float(d.score[0]), "box": box, "keypoints": kps})
                out.append(dets)
    json.dump({"detections": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
