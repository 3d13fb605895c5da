"""Named zones and lines end to end (issue 12): `edge run` on a real video (the
astronaut's face, a scikit-image photo, walking left to right across scikit-image's
`coffee`, tests/fixtures/video.py MOVING_SPANS) → the outbox → a private mosquitto →
`edge-hub serve` on SQLite.

Ground truth, from the video's construction: the face starts in the left half and
ends in the right half, so each pass is one track that starts outside the zone
`right` (x ≥ 0.5), enters it, crosses the line `mid` (x = 0.5, drawn upwards, so left
to right is `in`) once, never `out`, and exits `right` when its track ends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.video import MOVING_SPANS, face_video
from tests.support.edge_run import MQTT_SINK, device_toml

from .hub_support import HubProc, mosquitto, wait_for

pytestmark = pytest.mark.slow
DEVICE = "walk-1"
REGIONS = """\
[[streams.zones]]
name = "right"
points = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
[[streams.zones]]
name = "top"
points = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.0, 0.1]]
[[streams.lines]]
name = "mid"
start = [0.5, 1.0]
end = [0.5, 0.0]
"""


@pytest.fixture
def system(tmp_path: Path) -> Iterator[HubProc]:
    video, _ = face_video(tmp_path / "walk.avi", 160, MOVING_SPANS)
    with mosquitto(tmp_path) as port:
        hub = HubProc(f"sqlite:///{tmp_path}/hub.db", port, "edgewise/v1", tmp_path / "hub.log")
        cfg = tmp_path / "device.toml"
        cfg.write_text(
            device_toml(
                tmp_path / "data", video, health_port=0, sinks=MQTT_SINK, device_id=DEVICE,
                stream="walk", stream_extra=REGIONS,
                sync=f"[sync]\nport = {port}\ntelemetry_interval_s = 1.0\n",
            )
        )  # fmt: skip
        log = (tmp_path / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge.cli.main", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            yield hub
        finally:
            daemon.kill()
            daemon.wait()
            log.close()
            hub.stop()


def events(hub: HubProc) -> list[dict[str, Any]]:
    return list(hub.get(f"/api/events?device={DEVICE}&order=asc&limit=1000")["events"])


def stream_telemetry(hub: HubProc) -> dict[str, Any] | None:
    for d in hub.get("/api/devices")["devices"]:
        if d["device_id"] == DEVICE and d["telemetry"]:
            return dict(d["telemetry"]["streams"].get("walk") or {}) or None
    return None


def test_a_walking_face_enters_the_zone_crosses_the_line_and_is_counted(
    system: HubProc,
) -> None:
    hub = system

    def one_full_pass() -> list[dict[str, Any]] | None:
        evs = events(hub)
        ended = [e["track_id"] for e in evs if e["phase"] == "end"]
        crossed = {e["track_id"] for e in evs if e["phase"] == "cross"}
        done = [t for t in ended if t in crossed]
        return [e for e in evs if e["track_id"] == done[0]] if done else None

    track = wait_for(one_full_pass, 60, every=0.5)
    phases = [(e["phase"], e["zone"] or e["line"], e["direction"]) for e in track]
    lifecycle = [p for p in phases if p[0] not in ("update",)]
    assert lifecycle == [
        ("start", None, None),
        ("enter", "right", None),
        ("cross", "mid", "in"),
        ("exit", "right", None),
        ("end", None, None),
    ] or lifecycle == [  # the line and the zone edge coincide: either may come first
        ("start", None, None),
        ("cross", "mid", "in"),
        ("enter", "right", None),
        ("exit", "right", None),
        ("end", None, None),
    ], phases
    seqs = [e["seq"] for e in track]
    assert seqs == sorted(seqs)
    start, end = track[0], track[-1]
    assert start["zones"] == []  # it starts in the left half, below the top band
    assert end["zones"] == ["right"]  # where it was last seen
    enter = next(e for e in track if e["phase"] == "enter")
    assert enter["zones"] == ["right"] and enter["box"][2] > 0.5
    assert all(e["zones"] is not None for e in track)
    assert not any(e["phase"] == "cross" and e["direction"] == "out" for e in events(hub))
    assert not any(e["zone"] == "top" for e in events(hub))  # the face never reaches it

    # telemetry: the zones (empty ones too) and the line's counts
    tel = wait_for(
        lambda: (
            (s := stream_telemetry(hub))
            and s.get("lines", {}).get("mid", {}).get("in", 0) >= 1
            and s
        ),
        20,
        every=0.5,
    )
    assert set(tel["zones"]) == {"right", "top"} and tel["zones"]["top"] == {}
    assert tel["lines"]["mid"]["out"] == 0
    counted = tel["lines"]["mid"]["in"]  # the hub gets every crossing the device counted
    wait_for(lambda: sum(e["phase"] == "cross" for e in events(hub)) >= counted, 10)
