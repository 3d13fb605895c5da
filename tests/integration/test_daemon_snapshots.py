"""The daemon's snapshots: built only when a sink takes them, their figures in stats,
/metrics and health, the best pictures of the last tracks delivered before the sinks close.

Ground truth: the face video (tests/fixtures/video.py), 240 frames, faces in 30-89 and
150-209: two tracks, so 2 × (start, start_crop, best, best_crop) = 8 snapshots.
The sink is the jsonl sink plus ``emit_snapshot`` (what ``cloud_sync.sink.MqttSink`` does),
registered under ``SINKS["jsonl"]`` for the test.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from edge import sinks as sinks_mod
from edge.config import SinkConfig, load_config
from edge.daemon import Daemon
from edge.sinks import DaemonContext, JsonLinesSink
from edge.snapshots import Snapshot
from edge.snapshots.encoder import SnapshotEncoder
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.prom import value

pytestmark = pytest.mark.slow

RECEIVED: list[Snapshot] = []
_LOCK = threading.Lock()


class PictureSink(JsonLinesSink):
    def emit_snapshot(self, snapshot: Snapshot) -> None:
        with _LOCK:
            RECEIVED.append(snapshot)


def picture_jsonl(cfg: SinkConfig, ctx: DaemonContext) -> PictureSink:
    path = Path(getattr(cfg, "path"))  # noqa: B009  (a JsonlSinkConfig)
    path.parent.mkdir(parents=True, exist_ok=True)
    return PictureSink(path.open("a", encoding="utf-8"), ctx, owns=True)


@pytest.fixture
def pictures(monkeypatch: pytest.MonkeyPatch) -> list[Snapshot]:
    monkeypatch.setitem(sinks_mod.SINKS, "jsonl", f"{__name__}:picture_jsonl")
    RECEIVED.clear()
    return RECEIVED


def config(tmp_path: Path, extra: str = "", loop: bool = False) -> Path:
    video = face_video(tmp_path / "faces.avi", 240, DEFAULT_SPANS)[0]
    path = tmp_path / "edge.toml"
    path.write_text(f"""\
device_id = "snap-dev"
data_dir = "{tmp_path / "data"}"

[[streams]]
name = "cam"
source = "{video}"
detectors = ["face"]
thresholds = {{ face = 0.6 }}
{"loop = true" if loop else ""}

[detectors.face]
model = "blazeface-short"

[[sinks]]
type = "jsonl"
path = "{tmp_path / "events.jsonl"}"

[health]
enabled = false
{extra}
""")
    return path


def run_to_end(path: Path) -> tuple[Daemon, str, list[str]]:
    d = Daemon(path, load_config(path))
    d.start()
    try:
        running = d._running
        assert running is not None and running.runners[0].done.wait(60)
        names = [c.name for c in d.components()]
    finally:
        d.shutdown()
    return d, d.metrics_text(), names


def events(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def test_a_run_delivers_every_snapshot_and_counts_them(
    tmp_path: Path, pictures: list[Snapshot]
) -> None:
    d, metrics, names = run_to_end(config(tmp_path))
    assert "snapshots.encoder" in names
    evs = events(tmp_path)
    listed = {(e["id"], k) for e in evs for k in e.get("snapshots", [])}  # type: ignore[attr-defined]
    assert {(s.event_id, s.kind) for s in pictures} == listed and len(listed) == 8
    assert all(e.get("snapshots") for e in evs if e["phase"] in ("start", "end"))
    st = d.stats().snapshots
    assert st.taken == 8 and sum(st.dropped.values()) == 0 and st.encode_ms > 0
    assert value(metrics, "edgewise_snapshots_taken_total") == 8
    assert value(metrics, "edgewise_snapshots_dropped_total", reason="queue_full") == 0
    assert value(metrics, "edgewise_snapshots_lost_total", sink="jsonl") == 0
    assert 0 < value(metrics, "edgewise_snapshot_encode_seconds") < 1  # seconds, not ms


def test_snapshots_off_or_no_sink_that_takes_them_cost_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(SnapshotEncoder, "start", lambda self: started.append(self))
    d, _metrics, names = run_to_end(config(tmp_path))  # the plain jsonl sink takes none
    assert "snapshots.encoder" not in names and not started
    assert not any("snapshots" in e for e in events(tmp_path))
    assert d.stats().snapshots.taken == 0


@pytest.mark.parametrize("key", ["enabled = false", "kinds = []"])
def test_snapshots_turned_off_in_the_config(
    key: str, tmp_path: Path, pictures: list[Snapshot]
) -> None:
    _d, _metrics, names = run_to_end(config(tmp_path, f"[snapshots]\n{key}\n"))
    assert "snapshots.encoder" not in names and pictures == []
    assert not any("snapshots" in e for e in events(tmp_path))


@pytest.mark.faults
def test_a_dead_encoder_makes_the_daemon_unhealthy(
    tmp_path: Path, pictures: list[Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: SnapshotEncoder, job: object) -> None:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(SnapshotEncoder, "_process", crash)
    d = Daemon(config(tmp_path, loop=True), None)
    d.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            ok, body = d.health()
            comp = body["components"]["snapshots.encoder"]
            if not comp["ok"]:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert not ok and "encoder bug" in comp["reason"]
    finally:
        d.shutdown()


def test_a_reload_drains_the_old_encoder_and_keeps_the_counters(
    tmp_path: Path, pictures: list[Snapshot]
) -> None:
    path = config(tmp_path, loop=True)
    d = Daemon(path, load_config(path))
    d.start()
    try:
        old = d._running
        assert old is not None and old.encoder is not None
        deadline = time.monotonic() + 30
        while d.stats().snapshots.taken < 2:  # the first track's start pictures
            assert time.monotonic() < deadline
            time.sleep(0.05)
        path.write_text(path.read_text().replace("face = 0.6", "face = 0.65"))
        assert d.reload()
        new = d._running
        assert new is not None and new.encoder is not None and new.encoder is not old.encoder
        assert not old.encoder._thread.is_alive()  # drained and ended with its generation
        before = d.stats().snapshots.taken
        assert before >= 2 and before == len(pictures)  # the old one's counts carry over
        _ok, body = d.health()
        assert body["components"]["snapshots.encoder"]["ok"]
    finally:
        d.shutdown()
    assert d.stats().snapshots.taken == len(pictures) >= before
    # every picture belongs to an event the sink got before it
    listed = {(e["id"], k) for e in events(tmp_path) for k in e.get("snapshots", [])}  # type: ignore[attr-defined]
    assert {(s.event_id, s.kind) for s in pictures} <= listed
