"""Named zones and lines over tracked objects: who is in which zone, who crossed which line.

``Regions`` follows the confirmed tracks of one tracker (``edge.tracking``), frame by
frame. It is fed plain ``Seen`` records (track id, label, normalized box), so it does
not depend on how the tracker matches boxes; the vision pipeline feeds it every
confirmed track matched in a frame, and tells it when a track ends.

Zones: an object is in a zone when its anchor (``ZoneConfig.anchor``, by default the
bottom centre of its box) lies inside the polygon (the edge counts as inside). It
*enters* after ``inertia`` frames in a row inside, and *exits* after ``inertia`` frames
in a row outside, or when its track ends, so every enter has one exit and jitter on
the edge makes nothing.

Lines: the anchor's side of a line is the sign of the cross product of ``end - start``
and ``anchor - start``. In image coordinates (y down), facing from ``start`` to
``end``, the left side is negative. A crossing from the left side to the right is
``in``, right to left ``out``: the direction comes from the line's orientation, as in
supervision's ``LineZone`` and DeepStream's nvdsanalytics, but the rule is edgewise's own,
stated here so nobody has to guess (it was not checked against either's sign). A side counts
only once the anchor is at least ``hysteresis`` (normalized distance) away from the
line and its projection falls on the segment; inside that band the last side holds,
so a box that trembles on the line crosses once, not every frame. Walking round the
end of a line crosses nothing: beyond the segment the side is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from edge.config.regions import Anchor, LineConfig, Point, ZoneConfig

Box = tuple[float, float, float, float]
Direction = Literal["in", "out"]
RegionPhase = Literal["enter", "exit", "cross"]


@dataclass(frozen=True, slots=True)
class Seen:
    """One confirmed track in one frame."""

    track_id: int
    label: str
    box: Box  # normalized x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class RegionStep:
    """An object entered or left a zone, or crossed a line (``region`` names which)."""

    phase: RegionPhase
    track_id: int
    region: str
    ts: float
    direction: Direction | None = None  # cross only


def anchor_point(box: Box, anchor: Anchor) -> Point:
    x1, y1, x2, y2 = box
    return ((x1 + x2) / 2, y2 if anchor == "bottom_center" else (y1 + y2) / 2)


def in_polygon(p: Point, poly: list[Point]) -> bool:
    """Even-odd ray casting; a point on an edge is inside."""
    x, y = p
    inside = False
    n = len(poly)
    for i in range(n):
        (ax, ay), (bx, by) = poly[i], poly[(i + 1) % n]
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        if (
            abs(cross) <= 1e-12
            and min(ax, bx) <= x <= max(ax, bx)
            and min(ay, by) <= y <= max(ay, by)
        ):
            return True  # on the edge
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def line_side(p: Point, line: LineConfig) -> int:
    """-1 (left of start→end), +1 (right), 0: within ``hysteresis`` of the line or off its
    ends (no side)."""
    (sx, sy), (ex, ey) = line.start, line.end
    dx, dy = ex - sx, ey - sy
    length2 = dx * dx + dy * dy
    t = ((p[0] - sx) * dx + (p[1] - sy) * dy) / length2
    if not 0.0 <= t <= 1.0:
        return 0
    dist = (dx * (p[1] - sy) - dy * (p[0] - sx)) / length2**0.5
    if abs(dist) < max(line.hysteresis, 1e-9):
        return 0
    return 1 if dist > 0 else -1


@dataclass(slots=True)
class _ZoneState:
    inside: bool = False
    streak: int = 0  # frames in a row on the other side of ``inside``


@dataclass(slots=True)
class _TrackState:
    label: str
    zones: dict[str, _ZoneState] = field(default_factory=dict)
    sides: dict[str, int] = field(default_factory=dict)  # line → last side (-1 / +1)


@dataclass
class Regions:
    zones: list[ZoneConfig]
    lines: list[LineConfig]
    tracks: dict[int, _TrackState] = field(default_factory=dict)
    crossings: dict[str, dict[Direction, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.crossings = {ln.name: {"in": 0, "out": 0} for ln in self.lines}

    @property
    def empty(self) -> bool:
        return not self.zones and not self.lines

    def observe(self, seen: Iterable[Seen], ts: float) -> list[RegionStep]:
        """This frame's confirmed, matched tracks → the enters, exits and crossings."""
        out: list[RegionStep] = []
        for s in seen:
            st = self.tracks.get(s.track_id)
            if st is None:
                st = self.tracks[s.track_id] = _TrackState(s.label)
            for z in self.zones:
                zs = st.zones.setdefault(z.name, _ZoneState())
                now = in_polygon(anchor_point(s.box, z.anchor), z.points)
                if now == zs.inside:
                    zs.streak = 0
                    continue
                zs.streak += 1
                if zs.streak >= z.inertia:
                    zs.inside, zs.streak = now, 0
                    out.append(RegionStep("enter" if now else "exit", s.track_id, z.name, ts))
            for ln in self.lines:
                p = anchor_point(s.box, ln.anchor)
                side = line_side(p, ln)
                if side == 0:
                    if not _on_segment_span(p, ln):
                        st.sides.pop(ln.name, None)  # round the end: forget the side
                    continue
                last = st.sides.get(ln.name)
                st.sides[ln.name] = side
                if last is not None and last != side:
                    d: Direction = "in" if side > 0 else "out"
                    self.crossings[ln.name][d] += 1
                    out.append(RegionStep("cross", s.track_id, ln.name, ts, d))
        return out

    def end(self, track_id: int, ts: float) -> list[RegionStep]:
        """The track ended: an exit from every zone it is in; its state is forgotten."""
        st = self.tracks.pop(track_id, None)
        if st is None:
            return []
        return [RegionStep("exit", track_id, n, ts) for n, zs in st.zones.items() if zs.inside]

    def keep_only(self, track_ids: set[int]) -> None:
        """Forget tracks the tracker no longer has without having ended them (none should
        be: a safety net that bounds memory whatever the tracker does)."""
        for tid in [t for t in self.tracks if t not in track_ids]:
            del self.tracks[tid]

    def zones_of(self, track_id: int) -> list[str]:
        """The zones the track is in now, in config order."""
        st = self.tracks.get(track_id)
        if st is None:
            return []
        return [z.name for z in self.zones if (zs := st.zones.get(z.name)) and zs.inside]

    def zone_counts(self) -> dict[str, dict[str, int]]:
        """Objects in each zone now, by label (every configured zone, empty ones too)."""
        counts: dict[str, dict[str, int]] = {z.name: {} for z in self.zones}
        for st in self.tracks.values():
            for name, zs in st.zones.items():
                if zs.inside and name in counts:
                    counts[name][st.label] = counts[name].get(st.label, 0) + 1
        return counts

    def line_counts(self) -> dict[str, dict[Direction, int]]:
        return {k: dict(v) for k, v in self.crossings.items()}


def _on_segment_span(p: Point, ln: LineConfig) -> bool:
    (sx, sy), (ex, ey) = ln.start, ln.end
    dx, dy = ex - sx, ey - sy
    t = ((p[0] - sx) * dx + (p[1] - sy) * dy) / (dx * dx + dy * dy)
    return 0.0 <= t <= 1.0


def merge_zone_counts(parts: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for part in parts:
        for zone, by_label in part.items():
            z = out.setdefault(zone, {})
            for label, n in by_label.items():
                z[label] = z.get(label, 0) + n
    return out


def merge_line_counts(
    parts: Iterable[dict[str, dict[Direction, int]]],
) -> dict[str, dict[Direction, int]]:
    out: dict[str, dict[Direction, int]] = {}
    for part in parts:
        for line, c in part.items():
            o = out.setdefault(line, {"in": 0, "out": 0})
            o["in"] += c["in"]
            o["out"] += c["out"]
    return out


def anchor_in_any(box: Box, zones: list[ZoneConfig]) -> bool:
    """Whether ``box``'s anchor lies in some zone (``zone_filter``)."""
    return any(in_polygon(anchor_point(box, z.anchor), z.points) for z in zones)
