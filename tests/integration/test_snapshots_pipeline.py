"""Snapshots through the real pipeline: BlazeFace on the face fixture video, nanodet-m on
the demo's person clip, a recording ``SnapshotSink``, and the detector run again on the
JPEGs it received.

Ground truth: tests/fixtures/video.py, 240 frames at 30 frames/s, the astronaut's face
in frames 30–89 (top right) and 150–209 (centre): two tracks, so two start and two end
events. edge/demo/media.py: a person (the whole astronaut photo) walks left to right
along the bottom in frames 0–134, while the astronaut's face photo (head and shoulders,
which nanodet-m calls a person too) sits top right in frames 30–119.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig, SnapshotsConfig, StreamConfig, TrackingConfig
from edge.demo.media import FPS as DEMO_FPS
from edge.demo.media import H as DEMO_H
from edge.demo.media import W as DEMO_W
from edge.demo.media import build_video
from edge.detectors.base import Detection, ImageDetector
from edge.events import Event
from edge.pipeline import StreamRunner, load_slot
from edge.snapshots import Snapshot
from edge.snapshots.encoder import SnapshotEncoder
from tests.fixtures.video import DEFAULT_SPANS, face_video

pytestmark = pytest.mark.slow


class Recording:
    """Events and snapshots in the order they reached the sinks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[Event | Snapshot] = []

    def emit(self, events: list[Event]) -> None:
        with self.lock:
            self.log.extend(events)

    def emit_snapshot(self, s: Snapshot) -> None:
        with self.lock:
            self.log.append(s)

    @property
    def events(self) -> list[Event]:
        return [x for x in self.log if isinstance(x, Event)]

    @property
    def snapshots(self) -> list[Snapshot]:
        return [x for x in self.log if isinstance(x, Snapshot)]


Run = tuple[Recording, SnapshotEncoder, ImageDetector]


def run(video: Path, detector: str, model: str, threshold: float, cfg: SnapshotsConfig,
        labels: list[str] | None = None) -> Run:  # fmt: skip
    stream = StreamConfig(name="cam", source=str(video), detectors=[detector])
    dcfg = DetectorConfig(model=model, labels=labels, threads=1)
    slot = load_slot(detector, dcfg, threshold, None)
    rec = Recording()
    enc = SnapshotEncoder(cfg, rec.emit_snapshot)
    r = StreamRunner(stream, [slot], TrackingConfig(min_hits=3, max_missing=5), rec.emit,
                     snapshots=enc)  # fmt: skip
    enc.start()
    r.start()
    assert r.done.wait(90)
    r.join(5)
    assert enc.close(10.0)
    assert all(h.ok for h in enc.health())
    det: ImageDetector = load_slot(detector, dcfg, threshold, None).detector  # type: ignore[assignment]
    return rec, enc, det


def decode(s: Snapshot) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(s.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (s.height, s.width)
    return np.asarray(img)


def found_in_box(dets: list[Detection], s: Snapshot, label: str) -> bool:
    """The detector finds ``label`` again, its centre inside the snapshot's box."""
    assert s.box is not None
    x1, y1, x2, y2 = s.box
    for d in dets:
        cx = (d.box[0] + d.box[2]) / 2 / s.width
        cy = (d.box[1] + d.box[3]) / 2 / s.height
        if d.label == label and x1 <= cx <= x2 and y1 <= cy <= y2:
            return True
    return False


def check_pairing(rec: Recording, tracks: int | None) -> dict[str, Snapshot]:
    """Every start/end event lists the snapshots that arrived for it, after it
    (``tracks``: how many there must be; None: at least one)."""
    evs = rec.events
    starts = [e for e in evs if e.phase == "start"]
    ends = [e for e in evs if e.phase == "end"]
    assert len(starts) == len(ends) >= 1
    assert tracks is None or len(starts) == tracks
    tracks = len(starts)
    by_key = {(s.event_id, s.kind): s for s in rec.snapshots}
    assert len(by_key) == len(rec.snapshots)  # no kind sent twice for one event
    for e in evs:
        if e.phase not in ("start", "end"):
            assert e.snapshots is None, e  # updates, enter/exit/cross carry none
    for e in starts:
        assert e.snapshots == ("start", "start_crop")
    for e in ends:
        assert e.snapshots == ("best", "best_crop")
    position = {id(x): i for i, x in enumerate(rec.log)}
    for e in starts + ends:
        assert e.snapshots is not None
        for kind in e.snapshots:
            s = by_key[(e.id, kind)]
            assert s.stream == "cam" and position[id(s)] > position[id(e)]  # after its event
    assert len(by_key) == 4 * tracks
    return {
        f"{e.track_id}/{k}": by_key[(e.id, k)] for e in starts + ends for k in e.snapshots or ()
    }


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return face_video(tmp_path_factory.mktemp("v") / "faces.avi", 240, DEFAULT_SPANS)[0]


def test_blazeface_finds_the_face_again_in_each_snapshot(faces: Path) -> None:
    rec, enc, det = run(faces, "face", "blazeface-short", 0.6, SnapshotsConfig())
    shots = check_pairing(rec, len(DEFAULT_SPANS))
    stats = enc.stats()
    assert stats.taken == 8 and sum(stats.dropped.values()) == 0 and stats.encode_ms > 0
    for name, s in shots.items():
        img = decode(s)
        assert len(s.jpeg) <= 60_000
        if s.kind.endswith("_crop"):
            assert max(s.width, s.height) <= 320
        else:
            assert (s.width, s.height) == (640, 480)  # the 640×480 fixture, not enlarged
        assert found_in_box(det.detect(img), s, "face"), name
    # the start frame is the frame of the start event; the best scores at least as high
    ends = {e.track_id: e for e in rec.events if e.phase == "end"}
    starts = {e.track_id: e for e in rec.events if e.phase == "start"}
    for tid in ends:
        assert shots[f"{tid}/start"].ts == starts[tid].ts
        assert starts[tid].started_at <= shots[f"{tid}/best"].ts <= ends[tid].ts


def test_a_small_max_bytes_still_finds_the_face(faces: Path) -> None:
    cfg = SnapshotsConfig(max_bytes=8_000, max_dim=480, kinds=["start", "start_crop"])
    rec, _enc, det = run(faces, "face", "blazeface-short", 0.6, cfg)
    starts = [e for e in rec.events if e.phase == "start"]
    assert [e.snapshots for e in starts] == [("start", "start_crop")] * 2
    assert all(e.snapshots is None for e in rec.events if e.phase == "end")
    assert len(rec.snapshots) == 4 and all(len(s.jpeg) <= 8_000 for s in rec.snapshots)
    full = [s for s in rec.snapshots if s.kind == "start"]
    assert all(s.width <= 480 for s in full)
    assert all(found_in_box(det.detect(decode(s)), s, "face") for s in full)


@pytest.fixture(scope="module")
def person_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 0–134 of the demo video (the person's walk), every third one: 45 frames."""
    src = cv2.VideoCapture(str(build_video(tmp_path_factory.mktemp("demo") / "demo.avi")))
    out_path = tmp_path_factory.mktemp("p") / "person.avi"
    out = cv2.VideoWriter(str(out_path), cv2.VideoWriter.fourcc(*"MJPG"), DEMO_FPS / 3,
                          (DEMO_W, DEMO_H))  # fmt: skip
    for i in range(135):
        ok, img = src.read()
        assert ok
        if i % 3 == 0:
            out.write(img)
    src.release()
    out.release()
    return out_path


def test_nanodet_finds_the_person_again_in_its_snapshots(person_clip: Path) -> None:
    rec, _enc, det = run(person_clip, "objects", "nanodet-m", 0.3, SnapshotsConfig(), ["person"])
    # the truth: the walker along the bottom, and the astronaut's head-and-shoulders photo
    # (frames 30–119, top right), which nanodet-m also calls a person
    shots = check_pairing(rec, 2)
    starts = sorted((e for e in rec.events if e.phase == "start"), key=lambda e: e.ts)
    walker, photo = (e.box for e in starts)
    assert walker is not None and walker[1] > 0.5 and walker[3] > 0.9 and walker[0] < 0.1
    assert photo is not None and photo[0] > 0.5 and photo[3] < 0.55
    for name, s in shots.items():
        assert found_in_box(det.detect(decode(s)), s, "person"), name
