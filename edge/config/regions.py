"""``[[streams.zones]]`` and ``[[streams.lines]]``: named regions of a camera's picture.

Every point is normalized ``[x, y]`` in [0, 1] (0, 0 is the top left), so a zone
survives a change of resolution. An object is placed by one point of its box, its
*anchor*: by default the bottom centre, where a person or a car stands on the ground
(Frigate and Roboflow supervision use it for the same reason: a zone drawn on the
driveway should hold the car parked on it, not the car whose roof overhangs it).

The unnamed form of earlier releases, ``zones = [[[x, y], ...], ...]``, is still read:
its polygons are named ``zone-1``, ``zone-2``…, keep their old rule (box centre), and
keep filtering detections unless ``zone_filter`` says otherwise. It is deprecated.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section
from edge.wire import StreamName

log = logging.getLogger(__name__)

Anchor = Literal["bottom_center", "center"]
Point = tuple[float, float]


def _normalized(points: list[Point], what: str) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"{what} are normalized: x and y in [0, 1], got [{x}, {y}]; "
                "divide pixels by the image width and height"
            )
    return points


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether two segments share a point (touching and collinear overlap count)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and d1 != 0 and d2 != 0 and ((d3 > 0) != (d4 > 0)) and d3 and d4:
        return True

    def on(a: Point, b: Point, c: Point) -> bool:  # c on segment ab, given collinear
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on(q1, q2, p1))
        or (d2 == 0 and on(q1, q2, p2))
        or (d3 == 0 and on(p1, p2, q1))
        or (d4 == 0 and on(p1, p2, q2))
    )


def self_intersection(points: list[Point]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (edge i runs from point i to i+1) that meet."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:  # the closing edge is adjacent to the first
                continue
            if _segments_cross(*edges[i], *edges[j]):
                return i, j
    return None


def polygon_area(points: list[Point]) -> float:
    n = len(points)
    s = sum(
        points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
        for i in range(n)
    )
    return abs(s) / 2.0


class ZoneConfig(Section):
    name: StreamName = Field(
        title="Name", description="the zone's name in events and telemetry: letters, digits, `_.-`"
    )
    points: list[Point] = Field(
        title="Points",
        description="the polygon's corners, normalized [x, y] in [0, 1], in order (3 or more, "
        "edges may not cross)",
    )
    anchor: Anchor = Field(
        default="bottom_center",
        title="Anchor",
        description="the point of a box that must lie in the zone: `bottom_center` (where an "
        "object stands) or `center`",
    )
    inertia: int = Field(
        default=3,
        ge=1,
        le=100,
        title="Inertia",
        description="frames in a row an object's anchor must be inside (outside) before it "
        "enters (exits): jitter on the edge makes no events",
    )

    @field_validator("points")
    @classmethod
    def _polygon(cls, points: list[Point]) -> list[Point]:
        if len(points) < 3:
            raise ValueError(f"a zone needs at least 3 points, got {len(points)}")
        _normalized(points, "zone points")
        crossing = self_intersection(points)
        if crossing is not None:
            i, j = crossing
            raise ValueError(
                f"the polygon crosses itself: edge {i + 1} (points {i + 1}-{i + 2}) meets edge "
                f"{j + 1}; list the corners in order around the zone"
            )
        if polygon_area(points) < 1e-9:
            raise ValueError("the polygon has no area: its points lie on one line")
        return points


class LineConfig(Section):
    name: StreamName = Field(
        title="Name", description="the line's name in events and telemetry: letters, digits, `_.-`"
    )
    start: Point = Field(title="Start", description="one end, normalized [x, y]")
    end: Point = Field(
        title="End",
        description="the other end; facing from start to end, crossing from the left side to "
        "the right is `in`, right to left is `out`",
    )
    anchor: Anchor = Field(
        default="bottom_center", title="Anchor", description="the point of a box that crosses"
    )
    hysteresis: float = Field(
        default=0.02,
        ge=0.0,
        lt=0.5,
        title="Hysteresis",
        description="normalized distance from the line the anchor must reach on the far side "
        "before a crossing counts (jitter on the line counts nothing)",
    )

    @field_validator("start", "end")
    @classmethod
    def _point(cls, p: Point) -> Point:
        _normalized([p], "line ends")
        return p

    @model_validator(mode="after")
    def _length(self) -> LineConfig:
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        if (dx * dx + dy * dy) ** 0.5 < 1e-6:
            raise ValueError("start and end are the same point: a line needs a length")
        return self


def legacy_zones(data: object) -> object:
    """Turn the unnamed ``zones = [[[x, y], ...]]`` form into named zones (``zone-1``…):
    box centre as before, and ``zone_filter`` on unless set. Called on the raw stream table."""
    if not isinstance(data, dict):
        return data
    zones = data.get("zones")
    if not isinstance(zones, list) or not any(isinstance(z, list | tuple) for z in zones):
        return data
    data = dict(data)
    data["zones"] = [
        {"name": f"zone-{i + 1}", "points": z, "anchor": "center", "inertia": 1}
        if isinstance(z, list | tuple)
        else z
        for i, z in enumerate(zones)
    ]
    data.setdefault("zone_filter", True)
    log.warning(
        "stream %r: unnamed zones are deprecated; write [[streams.zones]] with name and points "
        "(they are read as zone-1, zone-2, ..., box centre, zone_filter = true)",
        data.get("name", "?"),
    )
    return data
