"""A user brings a YOLOv8 export with a manifest only (docs/models.md's example), checks it
with ``edge models check`` and runs ``edge detect``; a manifest that does not fit the
model is one line naming the output and the shape it expected.

The model file is the zoo's ``yolov8n-doclaynet`` (a real Ultralytics export) copied
into a folder of the user's, as ``yolo export model=... format=onnx`` would leave it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge.models.resolve import ResolvedModel
from tests.fixtures import doc_page
from tests.integration.test_cli import edge, fails

pytestmark = pytest.mark.slow
LABELS = [
    "Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header",
    "Picture", "Section-header", "Table", "Text", "Title",
]  # fmt: skip


def readme_manifest(sha256: str) -> dict[str, Any]:
    """docs/models.md's example manifest (section "Bring your own YOLO export")."""
    return {
        "name": "my-yolo",
        "version": "1",
        "task": "detect",
        "format": "onnx",
        "file": "best.onnx",
        "sha256": sha256,
        "license": "AGPL-3.0-only",
        "input": {
            "kind": "image", "width": 1024, "height": 1024, "layout": "NCHW", "color": "RGB",
            "resize": "letterbox", "interpolation": "linear", "align": "center",
            "pad_value": 114, "std": [255, 255, 255],
        },
        "decoder": {"type": "yolo", "nms": {"iou_threshold": 0.7, "max_detections": 300}},
        "labels": LABELS,
        "thresholds": {"score": 0.25},
    }  # fmt: skip


@pytest.fixture()
def folder(tmp_path: Path, zoo_model: Callable[[str], ResolvedModel]) -> Path:
    model = zoo_model("yolov8n-doclaynet")
    shutil.copy(model.path, tmp_path / "best.onnx")
    (tmp_path / "manifest.json").write_text(json.dumps(readme_manifest(model.manifest.sha256)))
    return tmp_path


def test_readme_manifest_checks_and_detects(folder: Path) -> None:
    out = edge("models", "check", folder / "manifest.json").stdout
    assert "ok (yolo, layout yolov8, 11 labels; outputs output0 [1, 15, 21504])" in out
    page, _ = doc_page.render()
    cv2.imwrite(str(folder / "page.png"), page)
    doc = json.loads(edge("detect", folder, folder / "page.png", "--json").stdout)
    assert sorted(d["label"] for d in doc["detections"]) == [
        "Picture", "Section-header", "Table", "Text", "Text",
    ]  # fmt: skip


def _write(folder: Path, **changes: Any) -> Path:
    doc = json.loads((folder / "manifest.json").read_text())
    for key, value in changes.items():
        if key == "decoder":
            doc["decoder"].update(value)
        else:
            doc[key] = value
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder / "manifest.json"


def test_label_count_that_does_not_fit_the_output(folder: Path) -> None:
    path = _write(folder, labels=LABELS[:10])
    fails("models", "check", path, match="output 'output0' has shape [1, 15, 21504]; with nc=10")


def test_layout_that_does_not_fit_the_output(folder: Path) -> None:
    path = _write(folder, decoder={"layout": "yolov5"})
    fails("models", "check", path, match="decoder.layout 'yolov5' with nc=11 (from labels) "
          "expects [1, N, 16]")  # fmt: skip


def test_labels_not_matching_num_classes(folder: Path) -> None:
    path = _write(folder, decoder={"num_classes": 80})
    cv2.imwrite(str(folder / "page.png"), doc_page.render()[0])
    fails("detect", path, folder / "page.png", match="labels has 11 entries, "
          "decoder.num_classes is 80")  # fmt: skip
