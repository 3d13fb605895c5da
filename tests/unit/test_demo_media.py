"""The demo's ground truth is consistent with its own zone and line (mechanics; no model):
the walking person's and cat's box anchors, straight from edge/demo/media.py SCRIPT, cross
DOOR and WALKWAY the way tests/integration/test_demo.py expects, and the demo's device
config validates with that zone and line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2

from edge.config import LineConfig, ZoneConfig
from edge.config.load import parse_config
from edge.demo import media
from edge.demo.run import DemoOptions, device_config
from edge.zones import in_polygon, line_side


def _anchors(photo: str) -> list[tuple[float, float]]:
    """Bottom centre of the photo's box in each frame it is on screen, normalized."""
    a = next(a for a in media.SCRIPT if a.photo == photo)
    img = cv2.imread(str(media.MEDIA / photo))
    assert img is not None
    ph, pw = img.shape[:2]
    out = []
    for i in range(a.first, a.last + 1):
        t = (i - a.first) / max(a.last - a.first, 1)
        x = min(max(round(a.x + t * (a.x_end - a.x)), 0), media.W - pw)
        y = min(max(round(a.y + t * (a.y_end - a.y)), 0), media.H - ph)
        out.append(((x + pw / 2) / media.W, (y + ph) / media.H))
    return out


def _walk(photo: str) -> tuple[list[bool], list[int]]:
    zone = ZoneConfig(name="walkway", points=list(media.WALKWAY))
    door = LineConfig(name="door", start=media.DOOR[0], end=media.DOOR[1])
    pts = _anchors(photo)
    return [in_polygon(p, zone.points) for p in pts], [line_side(p, door) for p in pts]


def test_the_person_crosses_the_door_inwards_and_enters_the_walkway() -> None:
    inside, side = _walk("person_astronaut.jpg")
    assert not inside[0] and inside[-1] and sum(inside) >= 15  # ≥ 3 inferences at 5 fps
    assert side[0] != side[-1] and sorted(set(side) - {0}) == [-1, 1]


def test_the_cat_leaves_the_walkway_and_crosses_the_door_outwards() -> None:
    inside, side = _walk("cat_chelsea.jpg")
    assert inside[0] and not inside[-1] and sum(inside) >= 15
    person_side = _walk("person_astronaut.jpg")[1]
    assert side[0] == person_side[-1] and side[-1] == person_side[0]  # the other way


def test_the_faces_stay_out_of_the_walkway_and_off_the_door() -> None:
    for a in media.SCRIPT:
        if a.label != "face":
            continue
        img = cv2.imread(str(media.MEDIA / a.photo))
        assert img is not None
        bottom = (a.y + img.shape[0]) / media.H
        assert bottom < media.WALKWAY[0][1] and bottom < media.DOOR[1][1], a


def test_the_demo_config_runs_nanodet_with_the_zone_and_the_line(tmp_path: Path) -> None:
    broker = SimpleNamespace(port=1883, protocol="5")
    text = device_config(DemoOptions(tmp_path), tmp_path / media.VIDEO, broker, 9999)  # type: ignore[arg-type]  # the two fields it reads
    cfg = parse_config(text, "demo.toml")
    cam = next(s for s in cfg.streams if s.name == "lobby-cam")
    assert cam.detectors == ["face", "objects"] and cam.fps_limit == 5
    assert [z.name for z in cam.zones] == ["walkway"] and [ln.name for ln in cam.lines] == ["door"]
    assert cfg.detectors["objects"].model == "nanodet-m" and cfg.detectors["objects"].threads == 1
