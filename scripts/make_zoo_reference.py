"""Write the numeric-check reference of a converted zoo model.

    .venv/bin/python scripts/make_zoo_reference.py nanodet-m CONVERTED.onnx

Runs CONVERTED.onnx (onnxruntime, one thread) on the fixed input of
``edge.models.numeric_check`` and writes the outputs' shapes, means and 256 sampled
values to ``edge/models/zoo/references/<reference>`` (the zoo entry's ``source.convert.check``).
Run it only on a conversion whose detections were checked by hand: for nanodet-m,
tests/integration/test_nanodet.py checks the boxes on real photos and against the
two reference decoders. It also prints the file's sha256 for the zoo entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.models import numeric_check, zoo  # noqa: E402
from edge.models.manifest import NpmSource  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="zoo model name, e.g. nanodet-m")
    ap.add_argument("onnx", type=Path, help="the converted model file")
    args = ap.parse_args()
    m = zoo.get(args.name)
    if not isinstance(m.source, NpmSource):
        raise SystemExit(f"{args.name}: not a converted (npm) zoo model")
    doc = numeric_check.summarize(args.onnx)
    doc["made_by"] = f"scripts/make_zoo_reference.py {args.name} (onnxruntime, 1 thread)"
    out = zoo.REFERENCE_DIR / m.source.convert.check.reference
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}; sha256 of {args.onnx.name}: {zoo.sha256_file(args.onnx)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
