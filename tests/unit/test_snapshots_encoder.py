"""``edge.snapshots``: bounded JPEGs, crop math, the encoder thread and its failure modes,
which frame a track's pictures show, and how the sink fanout hands them on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import SnapshotsConfig
from edge.events import Event, ModelRef
from edge.sinks import SinkFanout
from edge.snapshots import Snapshot, SnapshotSink
from edge.snapshots.encode import box_in_crop, crop_region, fit_jpeg
from edge.snapshots.encoder import SnapshotEncoder, SnapshotJob, encode_job
from edge.snapshots.tracks import TrackSnapshots
from edge.sources.video import ImageFolderSource, VideoFileSource

RNG = np.random.default_rng(7)


def scene(w: int, h: int) -> np.ndarray:
    """A smooth picture (gradients and discs): JPEG sizes like a camera frame's."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w, 1)), (y * 255 // max(h, 1)), ((x + y) % 256)], -1)
    img = img.astype(np.uint8)
    for _ in range(5):
        c = (int(RNG.integers(0, max(w, 1))), int(RNG.integers(0, max(h, 1))))
        cv2.circle(
            img, c, max(1, min(w, h) // 8), tuple(int(v) for v in RNG.integers(0, 255, 3)), -1
        )
    return img


def noise(w: int, h: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not a JPEG"
    return np.asarray(img)


Box = tuple[float, float, float, float]
MIDDLE: Box = (0.25, 0.25, 0.75, 0.75)


def job(image: np.ndarray, box: Box = MIDDLE, kinds: tuple[str, ...] = ("start", "start_crop"),
        released: bool = True) -> SnapshotJob:  # fmt: skip
    j = SnapshotJob("ev-1", "cam", kinds, 1_700_000_000.0, image, box)  # type: ignore[arg-type]
    if released:
        j.released.set()
    return j


# -- JPEGs and crops -------------------------------------------------------------------------


SIZES = [(1920, 1080, (640, 360)), (480, 640, (480, 640)), (1081, 1919, (361, 640)),
         (640, 640, (640, 640))]  # fmt: skip


@pytest.mark.parametrize(("w", "h", "want"), SIZES)
def test_the_frame_is_downsized_to_max_dim_never_enlarged(
    w: int, h: int, want: tuple[int, int]
) -> None:
    j = fit_jpeg(scene(w, h), 640, 70, 60_000)
    assert j is not None and (j.width, j.height) == want and j.quality == 70
    assert decode(j.data).shape[:2] == (want[1], want[0]) and len(j.data) <= 60_000


def test_a_jpeg_over_max_bytes_drops_quality_then_size_and_none_when_it_cannot_fit() -> None:
    img = noise(1280, 720)  # noise: the worst case for JPEG
    full = fit_jpeg(img, 640, 90, 10_000_000)
    assert full is not None and len(full.data) > 100_000
    lower = fit_jpeg(img, 640, 90, len(full.data) // 2)  # a lower quality is enough
    assert lower is not None and lower.quality < 90 and lower.width == 640
    small = fit_jpeg(img, 640, 90, 8_000)  # only a smaller picture fits
    assert small is not None and small.width < 640 and len(small.data) <= 8_000
    assert small.quality == 20 and abs(small.width / small.height - 16 / 9) < 0.05
    assert fit_jpeg(img, 640, 90, 300) is None  # not even 16 px fits 300 bytes


def test_crop_is_the_box_grown_by_padding_and_the_box_is_normalized_to_it() -> None:
    box = (0.25, 0.25, 0.75, 0.75)
    region = crop_region(box, 100, 100, 0.25)
    assert region == (12, 12, 88, 88)  # 0.125 → 12.5 floors to 12, 0.875 → 87.5 ceils to 88
    inner = box_in_crop(box, region, 100, 100)
    assert inner == pytest.approx((13 / 76, 13 / 76, 63 / 76, 63 / 76))
    assert crop_region(box, 100, 100, 0.0) == (25, 25, 75, 75)
    assert box_in_crop(box, (25, 25, 75, 75), 100, 100) == (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("box", "region"),
    [
        ((0.9, 0.9, 1.0, 1.0), (85, 85, 100, 100)),  # bottom-right corner: clipped
        ((0.0, 0.0, 0.1, 0.1), (0, 0, 15, 15)),  # top-left corner
        ((1.0, 1.0, 1.0, 1.0), (99, 99, 100, 100)),  # an empty box on the edge: one pixel
        ((0.0, 0.0, 1.0, 1.0), (0, 0, 100, 100)),  # the whole frame
    ],
)
def test_a_box_at_the_image_edge_is_clipped_to_the_frame(
    box: tuple[float, float, float, float], region: tuple[int, int, int, int]
) -> None:
    assert crop_region(box, 100, 100, 0.5) == region
    inner = box_in_crop(box, region, 100, 100)
    assert all(0.0 <= v <= 1.0 for v in inner) and inner[0] <= inner[2] and inner[1] <= inner[3]


@pytest.mark.parametrize(
    "image",
    [
        scene(640, 480)[:, :, 0].copy(),  # grey
        np.dstack([scene(640, 480), np.full((480, 640), 255, np.uint8)]),  # BGRA
        scene(1, 1),
        scene(3, 2),
        scene(641, 479),  # odd sizes
        scene(4000, 7),  # a sliver
    ],
    ids=["grey", "bgra", "1x1", "3x2", "641x479", "4000x7"],
)
def test_every_frame_shape_the_pipeline_accepts_encodes(image: np.ndarray) -> None:
    cfg = SnapshotsConfig()
    shots, too_big = encode_job(job(image, (0.1, 0.2, 0.6, 0.9)), cfg)
    assert too_big == 0 and [s.kind for s in shots] == ["start", "start_crop"]
    h, w = image.shape[:2]
    for s in shots:
        img = decode(s.jpeg)
        assert img.shape[:2] == (s.height, s.width) and max(s.width, s.height) <= cfg.max_dim
        assert s.box is not None and all(0.0 <= v <= 1.0 for v in s.box)
        assert s.event_id == "ev-1" and s.stream == "cam" and s.ts == 1_700_000_000.0
    full, cropped = shots
    assert full.box == (0.1, 0.2, 0.6, 0.9)
    assert max(cropped.width, cropped.height) <= cfg.crop_max_dim
    if min(h, w) >= 100:  # the crop keeps the box's aspect (within a pixel of rounding)
        assert abs(cropped.width / cropped.height - (0.75 * w) / (1.05 * h)) < 0.1


def test_the_crop_shows_what_is_inside_the_box() -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    img[120:240, 320:480] = (0, 0, 255)  # a red block: the "object"
    box = (320 / 640, 120 / 480, 480 / 640, 240 / 480)
    (crop_shot,), _ = encode_job(job(img, box, ("best_crop",)), SnapshotsConfig())
    c = decode(crop_shot.jpeg)
    assert crop_shot.box is not None
    x1, y1, x2, y2 = crop_shot.box
    ch, cw = c.shape[:2]
    inside = c[int(y1 * ch) + 3 : int(y2 * ch) - 3, int(x1 * cw) + 3 : int(x2 * cw) - 3]
    assert inside[..., 2].mean() > 200 and inside[..., 0].mean() < 40
    assert c[:2, :2, 2].mean() < 40  # the padding around it is the black background


# -- the encoder thread ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.got: list[Snapshot] = []
        self.cv = threading.Condition()

    def emit_snapshot(self, s: Snapshot) -> None:
        with self.cv:
            self.got.append(s)
            self.cv.notify_all()

    def wait(self, n: int, timeout: float = 5.0) -> list[Snapshot]:
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.got) >= n, timeout), self.got
            return list(self.got)


def wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.faults
def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    enc = SnapshotEncoder(SnapshotsConfig(queue=2), Recorder().emit_snapshot)  # not started
    t0 = time.perf_counter()
    assert enc.submit(job(scene(64, 48))) and enc.submit(job(scene(64, 48)))
    assert not enc.submit(job(scene(64, 48)))
    assert time.perf_counter() - t0 < 0.05
    s = enc.stats()
    assert s.dropped["queue_full"] == 2 and s.queue_depth == 2 and s.taken == 0
    enc.close(0.0)
    assert enc.stats().dropped["stopped"] == 4  # what was queued, never encoded
    assert not enc.submit(job(scene(64, 48))) and enc.stats().dropped["stopped"] == 6


def test_encodes_counts_and_drains_on_close() -> None:
    rec = Recorder()
    enc = SnapshotEncoder(SnapshotsConfig(), rec.emit_snapshot)
    enc.start()
    for _ in range(3):
        assert enc.submit(job(scene(1280, 720)))
    assert enc.close(5.0)
    assert len(rec.got) == 6 and enc.stats().taken == 6 and enc.stats().encode_ms > 0
    assert enc.health()[0].ok


def test_a_snapshot_waits_for_its_event_to_be_emitted() -> None:
    rec = Recorder()
    enc = SnapshotEncoder(SnapshotsConfig(), rec.emit_snapshot, release_wait_s=0.3)
    enc.start()
    j = job(scene(320, 240), released=False)
    assert enc.submit(j)
    time.sleep(0.15)
    assert rec.got == []  # encoded, held back: the event is not out yet
    j.released.set()
    rec.wait(2)
    never = job(scene(320, 240), released=False)
    assert enc.submit(never)
    wait_for(lambda: enc.stats().dropped["stopped"] == 2)  # its event never went out
    assert len(rec.got) == 2
    enc.close(2.0)


@pytest.mark.faults
def test_an_unencodable_frame_is_counted_and_the_thread_goes_on() -> None:
    rec = Recorder()
    enc = SnapshotEncoder(SnapshotsConfig(), rec.emit_snapshot)
    enc.start()
    five = np.zeros((10, 10, 5), np.uint8)  # 5 channels: cv2 cannot make a JPEG of it
    assert enc.submit(job(five))
    assert enc.submit(job(scene(64, 48)))
    rec.wait(2)
    s = enc.stats()
    assert s.dropped["encode_error"] == 2 and s.taken == 2
    (h,) = enc.health()
    assert h.ok and h.restarts == 0
    enc.close(2.0)


@pytest.mark.faults
def test_pictures_that_cannot_fit_are_counted_as_too_big() -> None:
    rec = Recorder()
    fits = SnapshotsConfig(max_bytes=2000)  # the smallest a config allows
    enc = SnapshotEncoder(fits, rec.emit_snapshot)
    enc.start()
    assert enc.submit(job(noise(1280, 720)))  # noise fits 2000 bytes only much smaller
    enc.close(5.0)
    assert enc.stats().taken == 2 and all(len(x.jpeg) <= 2000 for x in rec.got)
    tiny = SnapshotsConfig.model_construct(**{**fits.model_dump(), "max_bytes": 200})
    enc = SnapshotEncoder(tiny, rec.emit_snapshot)  # below what any JPEG can be
    enc.start()
    assert enc.submit(job(noise(1280, 720)))
    enc.close(5.0)
    s = enc.stats()
    assert s.taken == 0 and s.dropped["too_big"] == 2 and len(rec.got) == 2


@pytest.mark.faults
def test_a_crashing_encoder_thread_turns_health_red() -> None:
    def broken(s: Snapshot) -> None:
        raise RuntimeError("boom")  # an emit that raises (the fanout never does)

    enc = SnapshotEncoder(SnapshotsConfig(), broken, max_restarts=0)
    enc.start()
    assert enc.submit(job(scene(64, 48)))
    wait_for(lambda: not enc.health()[0].ok)
    (h,) = enc.health()
    assert h.fatal and "boom" in (h.reason or "")
    enc.close(1.0)


@pytest.mark.faults
def test_a_stalled_encoder_turns_health_red_and_recovers() -> None:
    gate = threading.Event()

    def stuck(s: Snapshot) -> None:
        gate.wait(5)

    enc = SnapshotEncoder(SnapshotsConfig(), stuck, stall_after_s=0.2)
    enc.start()
    assert enc.submit(job(scene(64, 48)))
    wait_for(lambda: "stalled" in (enc.health()[0].reason or ""))
    assert not enc.health()[0].ok
    gate.set()
    wait_for(lambda: enc.health()[0].ok)
    enc.close(2.0)


# -- which frames a track's pictures show ---------------------------------------------------


def event(phase: str, score: float = 0.8, box: tuple[float, ...] = (0.1, 0.1, 0.3, 0.3)) -> Event:
    return Event("cam", "vision", "face", score, phase, 1.0, 2.0, ModelRef("m", "1", "0" * 64),  # type: ignore[arg-type]
                 track_id=1, box=box)  # type: ignore[arg-type]  # fmt: skip


def test_start_queues_the_start_frame_and_end_the_best_frame() -> None:
    enc = SnapshotEncoder(SnapshotsConfig(), Recorder().emit_snapshot)
    shots = TrackSnapshots("cam", enc)
    f0, f1, f2 = scene(64, 48), scene(64, 48), scene(64, 48)
    start = event("start", 0.7)
    shots.started(("face", 1), start, f0)
    assert start.snapshots == ("start", "start_crop")
    shots.seen(("face", 1), 0.9, (0.2, 0.2, 0.4, 0.4), 3.0, f1)
    shots.seen(("face", 1), 0.8, (0.5, 0.5, 0.6, 0.6), 4.0, f2)  # lower: not kept
    end = event("end")
    shots.ended(("face", 1), end)
    assert end.snapshots == ("best", "best_crop") and not shots.held
    jobs = [enc._q.get_nowait(), enc._q.get_nowait()]
    assert jobs[0].event_id == start.id and jobs[0].image is f0 and jobs[0].ts == start.ts
    assert jobs[1].event_id == end.id and jobs[1].image is f1 and jobs[1].ts == 3.0
    assert jobs[1].box == (0.2, 0.2, 0.4, 0.4)
    assert not any(j.released.is_set() for j in jobs)
    shots.release()
    assert all(j.released.is_set() for j in jobs)


def test_only_the_configured_kinds_and_only_what_the_queue_took() -> None:
    enc = SnapshotEncoder(SnapshotsConfig(kinds=["best"], queue=1), Recorder().emit_snapshot)
    shots = TrackSnapshots("cam", enc)
    start = event("start")
    shots.started(("face", 1), start, scene(8, 8))
    assert start.snapshots is None  # no start kinds configured
    shots.started(("face", 2), event("start"), scene(8, 8))
    e1, e2 = event("end"), event("end")
    shots.ended(("face", 1), e1)
    shots.ended(("face", 2), e2)  # the queue (1) is full
    assert e1.snapshots == ("best",) and e2.snapshots is None
    assert enc.stats().dropped["queue_full"] == 1


def test_at_most_max_held_tracks_hold_a_frame_and_the_rest_are_counted() -> None:
    cfg = SnapshotsConfig(kinds=["best", "best_crop"], queue=64)
    enc = SnapshotEncoder(cfg, Recorder().emit_snapshot)
    shots = TrackSnapshots("cam", enc, max_held=2)
    for i in range(4):
        shots.started(("face", i), event("start"), scene(8, 8))
    assert len(shots.held) == 2
    ends = [event("end") for _ in range(4)]
    for i, e in enumerate(ends):
        shots.ended(("face", i), e)
    assert [e.snapshots is not None for e in ends] == [True, True, False, False]
    assert enc.stats().dropped["held_full"] == 4  # two tracks × best, best_crop
    shots.ended(("face", 99), event("end"))  # never started here
    assert enc.stats().dropped["no_frame"] == 2
    shots.started(("face", 7), event("start"), scene(8, 8))
    shots.keep_only("face", set())  # the tracker lost it without an end
    assert not shots.held


# -- sources hand out a new array per frame (held frames are never overwritten) -------------


def test_sources_do_not_reuse_frame_buffers(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        w.write(np.full((48, 64, 3), i * 60, np.uint8))
    w.release()
    src = VideoFileSource(path)
    frames = [src.read() for _ in range(4)]
    src.close()
    images = [f.image for f in frames if f is not None and f.image is not None]
    assert len(images) == 4
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.shares_memory(images[a], images[b])
    assert [round(float(i.mean()) / 60) for i in images] == [0, 1, 2, 3]  # each kept its own pixels
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 99, np.uint8))
    folder = ImageFolderSource(tmp_path)
    a_, b_ = folder.read(), folder.read()
    assert a_ is not None and b_ is not None and a_.image is not None and b_.image is not None
    assert not np.shares_memory(a_.image, b_.image)


# -- the sink fanout -------------------------------------------------------------------------


class EventsOnly:
    def emit_many(self, events: object) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def health(self) -> list[object]:
        return []


class Pictures(EventsOnly, Recorder):
    def __init__(self) -> None:
        Recorder.__init__(self)


class BrokenPictures(EventsOnly):
    def emit_snapshot(self, s: Snapshot) -> None:
        raise OSError("disk full")


def shot() -> Snapshot:
    return Snapshot("ev", "cam", "start", 1.0, b"\xff\xd8\xff", 1, 1, None)


@pytest.mark.faults
def test_the_fanout_forwards_snapshots_to_the_sinks_that_take_them() -> None:
    pics, broken = Pictures(), BrokenPictures()
    assert isinstance(pics, SnapshotSink) and not isinstance(EventsOnly(), SnapshotSink)
    assert not SinkFanout([("stdout", EventsOnly())]).takes_snapshots  # type: ignore[list-item]
    fan = SinkFanout([("stdout", EventsOnly()), ("mqtt", broken), ("pics", pics)])  # type: ignore[list-item]
    assert fan.takes_snapshots and [n for n, _ in fan.snapshot_sinks] == ["mqtt", "pics"]
    fan.emit_snapshot(shot())  # never raises
    fan.emit_snapshot(shot())
    assert len(pics.got) == 2
    st = fan.stats["mqtt"]
    assert st.failures == 2 and st.snapshots_lost == 2 and st.lost == 0
    health = {h.name: h for h in fan.health()}
    assert not health["sink.mqtt"].ok and "2 snapshot(s) lost" in (health["sink.mqtt"].reason or "")
    assert health["sink.pics"].ok and health["sink.stdout"].ok
    fan.emit_many([])  # an event write that works does not hide the failing snapshots
    assert not {h.name: h for h in fan.health()}["sink.mqtt"].ok


# -- pictures are released only once their events went out ---------------------------------


@pytest.mark.faults
def test_after_flush_runs_once_after_the_events_even_when_the_emit_fails() -> None:
    from edge.pipeline.items import EventBatch
    from edge.pipeline.metrics import StreamMetrics

    order: list[str] = []

    def emit(events: list[Event]) -> None:
        order.append(f"emit {len(events)}")
        raise OSError("sink down")

    batch = EventBatch(StreamMetrics("cam"), emit)
    batch.add(event("start"))
    batch.after_flush(lambda: order.append("release"))
    with pytest.raises(OSError):
        batch.flush()
    batch.flush()  # nothing pending, nothing registered: nothing runs again
    assert order == ["emit 1", "release"]


def test_held_frames_stay_under_the_byte_bound_and_a_shared_frame_counts_once() -> None:
    cfg = SnapshotsConfig(kinds=["best"], queue=64)
    enc = SnapshotEncoder(cfg, Recorder().emit_snapshot)
    frame_bytes = 480 * 640 * 3
    shots = TrackSnapshots("cam", enc, max_held_bytes=2 * frame_bytes)
    a, b, c = scene(640, 480), scene(640, 480), scene(640, 480)
    shots.started(("face", 1), event("start"), a)
    shots.started(("face", 2), event("start"), a)  # the same frame: no more bytes
    shots.started(("face", 3), event("start"), b)
    assert len(shots.held) == 3 and shots.held_bytes() == 2 * frame_bytes
    shots.started(("face", 4), event("start"), c)  # a third distinct frame: over the bound
    assert ("face", 4) not in shots.held
    shots.seen(("face", 1), 0.99, (0.1, 0.1, 0.2, 0.2), 5.0, c)  # better, but over the bound
    assert shots.held[("face", 1)].image is a
    shots.seen(("face", 3), 0.99, (0.1, 0.1, 0.2, 0.2), 5.0, a)  # better, already held
    assert shots.held[("face", 3)].image is a and shots.held_bytes() == frame_bytes
    shots.seen(("face", 1), 0.995, (0.1, 0.1, 0.2, 0.2), 6.0, c)  # now it fits
    assert shots.held[("face", 1)].image is c and shots.held_bytes() <= 2 * frame_bytes
    end = event("end")
    shots.ended(("face", 4), end)
    assert end.snapshots is None and enc.stats().dropped["held_full"] == 1
