"""tests/support/mot.py agrees with py-motmetrics (in its own pinned venv) on the
ByteTrack and IoU trackers' output for the scene of tests/unit/test_tracking_mot.py.

Ground truth: py-motmetrics 1.4.0 (``MOTAccumulator``, IoU distance, ``max_iou`` 0.5):
GT, FP, FN, IDSW, fragmentations and MOTA, for the 3 tracker set-ups × 2 frame rates ×
3 seeds (the IoU tracker fed boxes down to 0.1 makes the false positives).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.mot_scene import scored_frames
from tests.support.mot import evaluate
from tests.support.ref_venv import ensure_venv, run_in_venv

pytestmark = pytest.mark.slow
PINS = [
    "motmetrics==1.4.0",
    "numpy==1.26.4",
    "pandas==2.2.3",
    "scipy==1.14.1",
    "xmltodict==0.14.2",
]
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "motmetrics_ref.py"


def test_our_clear_mot_figures_match_py_motmetrics(tmp_path: Path) -> None:
    cases = [
        (kind, fps, seed, floor)
        for kind, floor in (("bytetrack", 0.1), ("iou", 0.5), ("iou", 0.1))
        for fps in (10, 5)
        for seed in range(3)
    ]
    sequences = [scored_frames(kind, fps, seed, floor) for kind, fps, seed, floor in cases]  # type: ignore[arg-type]
    data = tmp_path / "frames.json"
    data.write_text(json.dumps([[[o, h] for o, h in seq] for seq in sequences]))
    python = ensure_venv("motmetrics-1.4.0", PINS)
    theirs = json.loads(run_in_venv(python, SCRIPT, str(data)))
    for case, seq, ref in zip(cases, sequences, theirs, strict=True):
        mine = evaluate(seq)
        got = (mine.gt, mine.fp, mine.fn, mine.idsw, mine.frag)
        want = tuple(
            int(ref[k])
            for k in ("num_objects", "num_false_positives", "num_misses", "num_switches",
                      "num_fragmentations")
        )  # fmt: skip
        print(case, "ours", got, "py-motmetrics", want)
        assert got == want, (case, got, want)
        assert mine.mota == pytest.approx(ref["mota"], abs=1e-9), case
