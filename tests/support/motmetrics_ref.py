"""py-motmetrics' CLEAR-MOT figures for frames in a JSON file; run in its own venv.

    python motmetrics_ref.py FRAMES.json   # prints one JSON list, one dict per sequence

FRAMES.json: a list of sequences, each a list of frames ``[{obj_id: box}, {track_id:
box}]``, boxes x1, y1, x2, y2. Matching as tests/support/mot.py: IoU >= 0.5.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import motmetrics as mm
import numpy as np


def xywh(boxes: list[list[float]]) -> np.ndarray:
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], axis=1)


def main() -> None:
    sequences = json.loads(Path(sys.argv[1]).read_text())
    out = []
    for frames in sequences:
        acc = mm.MOTAccumulator(auto_id=True)
        for objs, hyps in frames:
            dist = mm.distances.iou_matrix(
                xywh(list(objs.values())), xywh(list(hyps.values())), max_iou=0.5
            )
            acc.update([int(k) for k in objs], [int(k) for k in hyps], dist)
        m = mm.metrics.create().compute(
            acc,
            metrics=["num_objects", "num_false_positives", "num_misses", "num_switches",
                     "num_fragmentations", "mota"],
        )  # fmt: skip
        row = m.iloc[0]
        out.append({k: float(row[k]) for k in m.columns})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
