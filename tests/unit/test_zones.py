"""Named zones and lines (issue 12): the config's bad input, and hand-made tracks moving
through zones and across lines (enter / exit order, inertia, direction counts, jitter).

Ground truth is the geometry itself: boxes are placed by hand on either side of a
zone's edge or a line, so where each anchor lies is known without computing it."""

from __future__ import annotations

import json
import logging

import pytest

from edge.config import DeviceConfig, StreamConfig, TrackingConfig
from edge.config.load import parse_config
from edge.config.regions import LineConfig, ZoneConfig
from edge.errors import ConfigError
from edge.events import Event, ModelRef
from edge.pipeline.items import EventBatch
from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.vision import VisionPipeline, VisionResult
from edge.zones import Regions, Seen, anchor_point, in_polygon, line_side

BASE = """\
device_id = "d1"

[detectors.face]
model = "blazeface-short"

[[streams]]
name = "cam"
source = "x.mp4"
detectors = ["face"]
"""

RIGHT = ZoneConfig(name="right", points=[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)], inertia=1)
# facing up the middle of the picture: the right half is the right side, so left→right is "in"
MID = LineConfig(name="mid", start=(0.5, 1.0), end=(0.5, 0.0), hysteresis=0.05)


def config_problem(extra: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, "device.toml")
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    return msg


def box_at(x: float, y: float = 0.8, w: float = 0.1, h: float = 0.2) -> tuple[float, ...]:
    """A box whose bottom centre is (x, y)."""
    return (x - w / 2, y - h, x + w / 2, y)


# --- bad input: one line naming the field ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra", "where", "what"),
    [
        (
            "two points",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0]]\n',
            "device.toml:12 streams.0.zones.0.points",
            "at least 3 points, got 2",
        ),
        (
            "point out of range",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [1, 1.5]]\n',
            "device.toml:12 streams.0.zones.0.points",
            "normalized: x and y in [0, 1], got [1.0, 1.5]",
        ),
        (
            "negative point",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [-0.1, 1]]\n',
            "streams.0.zones.0.points",
            "got [-0.1, 1.0]",
        ),
        (
            "self-intersecting (a bow tie)",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 1], [1, 0], [0, 1]]\n',
            "device.toml:12 streams.0.zones.0.points",
            "crosses itself: edge 1 (points 1-2) meets edge 3",
        ),
        (
            "no area",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [0.5, 0.5], [1, 1]]\n',
            "streams.0.zones.0.points",
            "",  # collinear points: their edges overlap, so this is a crossing too
        ),
        (
            "duplicate zone names",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [1, 1]]\n'
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [0, 1]]\n',
            "device.toml:10 streams.0.zones",
            "the name 'a' is used twice",
        ),
        (
            "duplicate line names",
            '[[streams.lines]]\nname = "l"\nstart = [0, 0]\nend = [1, 1]\n'
            '[[streams.lines]]\nname = "l"\nstart = [0, 1]\nend = [1, 0]\n',
            "streams.0.lines",
            "the name 'l' is used twice",
        ),
        (
            "a zone and a line of one name",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [1, 1]]\n'
            '[[streams.lines]]\nname = "a"\nstart = [0, 0]\nend = [1, 1]\n',
            "streams.0",
            "'a' names a zone and a line",
        ),
        (
            "zone without a name",
            "[[streams.zones]]\npoints = [[0, 0], [1, 0], [1, 1]]\n",
            "streams.0.zones.0.name",
            "Field required",
        ),
        (
            "zone name with a space",
            '[[streams.zones]]\nname = "drive way"\npoints = [[0, 0], [1, 0], [1, 1]]\n',
            "streams.0.zones.0.name",
            "",
        ),
        (
            "zero-length line",
            '[[streams.lines]]\nname = "l"\nstart = [0.5, 0.5]\nend = [0.5, 0.5]\n',
            "device.toml:10 streams.0.lines.0",
            "start and end are the same point",
        ),
        (
            "line end out of range",
            '[[streams.lines]]\nname = "l"\nstart = [0, 0]\nend = [2, 0]\n',
            "device.toml:13 streams.0.lines.0.end",
            "normalized: x and y in [0, 1], got [2.0, 0.0]",
        ),
        (
            "line with one coordinate",
            '[[streams.lines]]\nname = "l"\nstart = [0]\nend = [1, 0]\n',
            "streams.0.lines.0.start.1",
            "Field required",
        ),
        (
            "negative hysteresis",
            '[[streams.lines]]\nname = "l"\nstart = [0, 0]\nend = [1, 0]\nhysteresis = -0.1\n',
            "streams.0.lines.0.hysteresis",
            "greater than or equal to 0",
        ),
        (
            "zero inertia",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [1, 1]]\ninertia = 0\n',
            "streams.0.zones.0.inertia",
            "greater than or equal to 1",
        ),
        ("filter without zones", "zone_filter = true\n", "streams.0", "needs at least one zone"),
        (
            "unknown key in a zone",
            '[[streams.zones]]\nname = "a"\npoints = [[0, 0], [1, 0], [1, 1]]\ncolour = 1\n',
            "streams.0.zones.0.colour",
            "unknown key",
        ),
        (
            "legacy zone with two points",
            "zones = [[[0, 0], [1, 0]]]\n",
            "streams.0.zones.0.points",
            "at least 3 points",
        ),
    ],
)
def test_bad_regions_are_one_line_errors_naming_the_field(
    name: str, extra: str, where: str, what: str
) -> None:
    msg = config_problem(extra)
    assert where + ":" in msg, msg
    assert what in msg, msg


def test_legacy_unnamed_zones_still_work_and_keep_filtering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = parse_config(BASE + "zones = [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]\n", "d.toml")
    s = cfg.streams[0]
    assert [z.name for z in s.zones] == ["zone-1"]
    assert s.zones[0].anchor == "center" and s.zones[0].inertia == 1 and s.zone_filter
    assert "deprecated" in caplog.text
    off = parse_config(BASE + "zone_filter = false\nzones = [[[0, 0], [1, 0], [1, 1]]]\n", "d")
    assert not off.streams[0].zone_filter


def test_named_zones_default_to_the_bottom_centre_and_do_not_filter() -> None:
    cfg = parse_config(
        BASE + '[[streams.zones]]\nname = "driveway"\npoints = [[0, 0], [1, 0], [1, 1]]\n', "d"
    )
    z = cfg.streams[0].zones[0]
    assert (z.name, z.anchor, z.inertia) == ("driveway", "bottom_center", 3)
    assert not cfg.streams[0].zone_filter


# --- geometry ------------------------------------------------------------------------------


def test_anchor_points() -> None:
    assert anchor_point((0.2, 0.2, 0.4, 0.6), "bottom_center") == pytest.approx((0.3, 0.6))
    assert anchor_point((0.2, 0.2, 0.4, 0.6), "center") == pytest.approx((0.3, 0.4))


def test_point_in_polygon_edges_count_as_inside() -> None:
    tri = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert in_polygon((0.2, 0.2), tri) and in_polygon((0.5, 0.5), tri)  # on the hypotenuse
    assert not in_polygon((0.6, 0.6), tri) and not in_polygon((-0.1, 0.1), tri)


def test_line_sides_and_the_dead_band() -> None:
    assert line_side((0.4, 0.5), MID) == -1 and line_side((0.6, 0.5), MID) == 1
    assert line_side((0.52, 0.5), MID) == 0  # within the 0.05 hysteresis
    assert line_side((0.8, 1.2), MID) == 0  # beyond the segment's end


# --- tracks through zones -------------------------------------------------------------------


def walk(regions: Regions, xs: list[float], track: int = 1, label: str = "person") -> list[str]:
    out: list[str] = []
    for i, x in enumerate(xs):
        for s in regions.observe([Seen(track, label, box_at(x))], float(i)):
            out.append(f"{i}:{s.phase}:{s.region}" + (f":{s.direction}" if s.direction else ""))
    return out


def test_enter_then_exit_in_order() -> None:
    r = Regions([RIGHT], [])
    assert walk(r, [0.2, 0.4, 0.6, 0.8, 0.6, 0.4, 0.2]) == ["2:enter:right", "5:exit:right"]


def test_inertia_ignores_jitter_on_the_zone_edge() -> None:
    zone = RIGHT.model_copy(update={"inertia": 3})
    r = Regions([zone], [])
    # flickers across the edge (0.49 / 0.51) without ever holding 3 frames: nothing
    assert walk(r, [0.49, 0.51, 0.49, 0.51, 0.51, 0.49, 0.51]) == []
    # then stays: entered on the 3rd frame in a row inside; leaves: exits on the 3rd outside
    r = Regions([zone], [])
    assert walk(r, [0.4, 0.6, 0.6, 0.6, 0.6, 0.4, 0.4, 0.4]) == ["3:enter:right", "7:exit:right"]


def test_an_ended_track_exits_its_zones_and_counts_follow() -> None:
    left = ZoneConfig(name="left", points=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1)
    r = Regions([left, RIGHT], [])
    r.observe([Seen(1, "person", box_at(0.7)), Seen(2, "car", box_at(0.8))], 0.0)
    r.observe([Seen(3, "person", box_at(0.2))], 0.0)
    assert r.zone_counts() == {"left": {"person": 1}, "right": {"person": 1, "car": 1}}
    assert r.zones_of(2) == ["right"]
    assert [(s.phase, s.region) for s in r.end(2, 1.0)] == [("exit", "right")]
    assert r.zone_counts() == {"left": {"person": 1}, "right": {"person": 1}}
    assert r.end(2, 1.0) == [] and r.zones_of(2) == []


# --- tracks across lines --------------------------------------------------------------------


def test_crossings_are_counted_by_direction() -> None:
    r = Regions([], [MID])
    assert walk(r, [0.2, 0.4, 0.6, 0.8]) == ["2:cross:mid:in"]
    assert walk(r, [0.8, 0.3], track=2) == ["1:cross:mid:out"]
    assert walk(r, [0.1, 0.9], track=3) == ["1:cross:mid:in"]  # one frame to the other side
    assert r.line_counts() == {"mid": {"in": 2, "out": 1}}


def test_jitter_on_the_line_counts_one_crossing() -> None:
    r = Regions([], [MID])
    # approaches, trembles within ±0.04 of the line (inside the 0.05 band), then goes on
    xs = [0.3, 0.42, 0.47, 0.53, 0.46, 0.54, 0.48, 0.52, 0.56, 0.7]
    assert walk(r, xs) == ["8:cross:mid:in"]
    # with no hysteresis the same trembling would cross at every sign change
    bare = Regions([], [MID.model_copy(update={"hysteresis": 0.0})])
    assert len(walk(bare, xs)) == 5  # in, out, in, out, in
    assert r.line_counts() == {"mid": {"in": 1, "out": 0}}


def test_going_round_the_end_of_a_line_crosses_nothing() -> None:
    short = LineConfig(name="gate", start=(0.5, 1.0), end=(0.5, 0.5))  # the lower half only
    r = Regions([], [short])
    out = []
    for i, (x, y) in enumerate([(0.3, 0.8), (0.3, 0.3), (0.7, 0.3), (0.7, 0.8)]):
        out += r.observe([Seen(1, "person", box_at(x, y))], float(i))
    assert out == [] and r.line_counts() == {"gate": {"in": 0, "out": 0}}


# --- through the vision pipeline: events and their order ----------------------------------


class _Slot:
    name = "face"
    ref = ModelRef("blazeface-short", "1", "0" * 12)


def _pipeline(stream: StreamConfig) -> tuple[VisionPipeline, StreamMetrics]:
    m = StreamMetrics(stream.name)
    # no updates: the steps under test are start, the region steps and end
    tracking = TrackingConfig(
        min_hits=2, max_missing=2, update_interval_s=100.0, update_iou_below=0.01
    )
    return VisionPipeline(stream, [_Slot()], tracking, m), m  # type: ignore[list-item]


def _frames(p: VisionPipeline, xs: list[float | None]) -> list[Event]:
    from edge.detectors.base import Detection
    from edge.sources import Frame

    events: list[Event] = []
    batch = EventBatch(p.metrics, events.extend)
    for i, x in enumerate(xs):
        dets = (
            []
            if x is None
            else [Detection("person", 0.9, tuple(v * 100 for v in box_at(x, w=0.3)))]
        )
        frame = Frame(index=i, ts=float(i), t_read=0.0)
        p.post(VisionResult(frame, (100, 100), {"face": dets}), 1.0, batch)
        batch.flush()
    return events


def test_pipeline_events_carry_zones_and_enter_exit_cross_in_order() -> None:
    stream = StreamConfig(
        name="cam", source="x.mp4", detectors=["face"], zones=[RIGHT], lines=[MID]
    )
    p, m = _pipeline(stream)
    events = _frames(p, [0.30, 0.34, 0.38, 0.42, 0.46, 0.54, 0.58, 0.62, None, None, None])
    got = [(e.phase, e.zone or e.line, e.direction, e.zones) for e in events]
    assert got == [
        ("start", None, None, ()),
        ("enter", "right", None, ("right",)),
        ("cross", "mid", "in", ("right",)),
        ("exit", "right", None, ()),
        ("end", None, None, ("right",)),  # where it was last seen
    ]
    assert all(e.track_id == events[0].track_id for e in events)
    assert m.events["enter"] == 1 and m.events["cross"] == 1 and m.events["exit"] == 1
    assert m.zones == {"right": {}} and m.lines == {"mid": {"in": 1, "out": 0}}
    wire = events[2].to_json()
    assert wire["line"] == "mid" and wire["direction"] == "in" and wire["zones"] == ["right"]
    assert "zone" not in wire


def test_pipeline_counts_objects_in_zones_while_they_are_there() -> None:
    stream = StreamConfig(name="cam", source="x.mp4", detectors=["face"], zones=[RIGHT])
    p, m = _pipeline(stream)
    _frames(p, [0.7, 0.7, 0.7])
    assert m.zones == {"right": {"person": 1}}


def test_zone_filter_drops_objects_outside_every_zone() -> None:
    stream = StreamConfig(
        name="cam", source="x.mp4", detectors=["face"], zones=[RIGHT], zone_filter=True
    )
    p, _ = _pipeline(stream)
    assert _frames(p, [0.2, 0.2, 0.2, 0.2]) == []
    events = _frames(p, [0.8, 0.8, 0.8])
    assert [e.phase for e in events][:2] == ["start", "enter"]


def test_streams_without_regions_have_no_zone_fields() -> None:
    stream = StreamConfig(name="cam", source="x.mp4", detectors=["face"])
    p, m = _pipeline(stream)
    events = _frames(p, [0.5, 0.5, None, None, None])
    assert [e.phase for e in events] == ["start", "end"]
    assert "zones" not in events[0].to_json() and m.zones == {} and m.lines == {}


def test_device_config_round_trip_keeps_regions() -> None:
    cfg = parse_config(
        BASE
        + '[[streams.zones]]\nname = "porch"\npoints = [[0, 0], [1, 0], [1, 1]]\n'
        + '[[streams.lines]]\nname = "gate"\nstart = [0, 0.5]\nend = [1, 0.5]\n',
        "d",
    )
    again = DeviceConfig.model_validate(cfg.model_dump())
    assert again.streams[0].zones == cfg.streams[0].zones
    assert again.streams[0].lines[0].name == "gate"


# --- the wire: schema, producer-side check, telemetry ---------------------------------------


def _wire(**kw: object) -> dict[str, object]:
    e = Event(
        stream="cam", kind="vision", label="person", score=0.9, phase="start", started_at=1.8e9,
        ts=1.8e9, model=_Slot.ref, track_id=3, box=(0.1, 0.1, 0.2, 0.2),
    )  # fmt: skip
    return {**e.wire("d1", "0" * 8 + "-0000-7000-8000-" + "0" * 12), "seq": 1, **kw}


def test_events_without_zones_are_still_valid_v1() -> None:
    from cloud_sync.schema import EventV1

    e = EventV1.model_validate_json(json.dumps(_wire()))
    assert e.zones is None and e.zone is None and e.line is None and e.direction is None


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"phase": "enter", "zone": "porch", "zones": ["porch"]}, True),
        ({"phase": "exit", "zone": "porch", "zones": []}, True),
        ({"phase": "cross", "line": "gate", "direction": "in"}, True),
        ({"phase": "start", "zones": ["porch", "drive"]}, True),
        ({"phase": "enter"}, False),  # which zone?
        ({"phase": "start", "zone": "porch"}, False),  # a zone goes with enter / exit only
        ({"phase": "cross", "line": "gate"}, False),  # which way?
        ({"phase": "cross", "line": "gate", "direction": "up"}, False),
        ({"phase": "start", "zones": ["bad name"]}, False),
        ({"phase": "leave", "zone": "porch"}, False),
    ],
)
def test_the_schema_checks_region_fields(fields: dict[str, object], ok: bool) -> None:
    from cloud_sync.outbox.validate import check_group

    body = json.dumps({k: v for k, v in _wire(**fields).items() if k != "seq"})
    refused = check_group([body[1:]])
    assert (refused == []) == ok, refused


def test_the_domain_event_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(ValueError, match="zone"):
        Event(stream="c", kind="vision", label="x", score=0.5, phase="enter", started_at=0,
              ts=0, model=_Slot.ref)  # fmt: skip
    with pytest.raises(ValueError, match="line"):
        Event(stream="c", kind="vision", label="x", score=0.5, phase="start", started_at=0,
              ts=0, model=_Slot.ref, line="gate", direction="in")  # fmt: skip


def test_telemetry_carries_zone_and_line_counts() -> None:
    from cloud_sync.schema import StreamStatsV1
    from cloud_sync.telemetry import stream_v1
    from edge.stats import StreamStats

    s = StreamStats(
        kind="video", live=True, fps_in=10.0, fps_processed=10.0,
        zones={"porch": {"person": 2}, "drive": {}}, lines={"gate": {"in": 3, "out": 1}},
    )  # fmt: skip
    v = stream_v1(s)
    assert v.zones == {"porch": {"person": 2}, "drive": {}}
    assert v.lines == {"gate": {"in": 3, "out": 1}}
    again = StreamStatsV1.model_validate_json(v.model_dump_json())
    assert again == v
    with pytest.raises(ValueError):
        StreamStatsV1.model_validate(
            {"fps_in": 1.0, "fps_processed": 1.0, "dropped": 0, "lines": {"g": {"up": 1}}}
        )


def test_prometheus_shows_zone_objects_and_line_crossings() -> None:
    from edge.pipeline.prom import stream_families

    m = StreamMetrics("cam")
    m.zones = {"porch": {"person": 2}}
    m.lines = {"gate": {"in": 3, "out": 1}}
    fams = {f.name: f for f in stream_families([m], {"cam": True})}
    (zone,) = fams["edgewise_zone_objects"].samples
    assert zone.labels == {"stream": "cam", "zone": "porch", "label": "person"} and zone.value == 2
    crossings = {s.labels["direction"]: s.value for s in fams["edgewise_line_crossings"].samples}
    assert crossings == {"in": 3, "out": 1}


# --- remote tuning ------------------------------------------------------------------------

WITH_REGIONS = (
    BASE
    + '[[streams.zones]]\nname = "porch"\npoints = [[0, 0], [1, 0], [1, 1]]\n'
    + '[[streams.lines]]\nname = "gate"\nstart = [0, 0.5]\nend = [1, 0.5]\n'
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("points = [[0, 0], [1, 0], [1, 1]]", "points = [[0, 0], [1, 0], [0, 1]]"),
        ('name = "porch"', 'name = "garden"\nanchor = "center"\ninertia = 5'),
        ("end = [1, 0.5]", "end = [1, 0.6]\nhysteresis = 0.05"),
        ('[[streams.lines]]\nname = "gate"\nstart = [0, 0.5]\nend = [1, 0.5]\n', ""),
        ('source = "x.mp4"', 'source = "x.mp4"\nzone_filter = true'),
    ],
)
def test_zones_and_lines_are_remote_tunable(old: str, new: str) -> None:
    from edge.config.remote import check_remote_config

    assert old in WITH_REGIONS
    remote = WITH_REGIONS.replace(old, new, 1)
    check_remote_config(WITH_REGIONS, remote, origin="device.toml")
    parse_config(remote, "remote")  # and it is a valid config


def test_a_remote_zone_is_still_validated() -> None:
    from edge.config.remote import check_remote_config

    bow_tie = WITH_REGIONS.replace("[[0, 0], [1, 0], [1, 1]]", "[[0, 0], [1, 1], [1, 0], [0, 1]]")
    check_remote_config(WITH_REGIONS, bow_tie, origin="device.toml")  # on the allow-list
    with pytest.raises(ConfigError, match=r"streams\.0\.zones\.0\.points: the polygon crosses"):
        parse_config(bow_tie, "remote")


def test_more_than_64_zones_is_an_error() -> None:
    zones = "".join(
        f'[[streams.zones]]\nname = "z{i}"\npoints = [[0, 0], [1, 0], [1, 1]]\n' for i in range(65)
    )
    assert "streams.0.zones: List should have at most 64 items" in config_problem(zones)


def test_regions_forget_tracks_the_tracker_dropped() -> None:
    r = Regions([RIGHT], [MID])
    r.observe([Seen(1, "person", box_at(0.7)), Seen(2, "person", box_at(0.2))], 0.0)
    r.keep_only({2})
    assert set(r.tracks) == {2} and r.zone_counts() == {"right": {}}
