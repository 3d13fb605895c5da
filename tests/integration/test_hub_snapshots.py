"""Snapshots end to end: a real mosquitto, ``edge-hub serve`` on SQLite (files) and on
PostgreSQL (blobs), and a paho publisher sending an event batch and binary snapshot
messages of real OpenCV JPEGs, some before their event, some resent, some hostile."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from cloud_sync.schema import topic
from tests.support.edge_run import sample

from ..support.snapshots import batch, header, jpeg, message, raw_message, track
from .hub_support import HubProc, Publisher, mosquitto, wait_for

pytestmark = pytest.mark.slow

TOKEN = "snapshots-e2e-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEV = "cam-s"
BOOT = str(uuid.uuid4())
FRAME, FCROP = jpeg("astronaut"), jpeg("astronaut", 80, 120)
BEST, BCROP = jpeg("chelsea"), jpeg("chelsea", 96, 96, progressive=True)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def metric(hub: HubProc, name: str) -> float:
    """``edge_hub_NAME`` (``NAME`` may end in ``{label="value"}``), parsed; 0 if absent."""
    text = fetch(hub.url("/metrics"), AUTH)[2].decode()
    base, _, labels = name.partition("{")
    return max(sample(text, f"edge_hub_{base}", labels.rstrip("}")), 0.0)


def snap_url(hub: HubProc, event_id: str, kind: str | None = None) -> str:
    return hub.url(f"/api/events/{event_id}/snapshot" + (f"?kind={kind}" if kind else ""))


def test_snapshots_are_stored_once_served_and_hostile_ones_refused(
    db_url: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    start, end = track(DEV, BOOT, 9)
    other_start, _ = track("cam-o", str(uuid.uuid4()), 1)
    t_dev, t_other = topic(prefix, DEV, "snapshots"), topic(prefix, "cam-o", "snapshots")
    env = {**os.environ, "EDGE_HUB_TOKEN": TOKEN}
    args = ("--snapshot-pending-s", "2", "--client-id", "hub-snap")
    with mosquitto(tmp_path) as port:
        hub = HubProc(db_url, port, prefix, tmp_path / "hub1.log", *args, env=env)
        pub = Publisher(port)
        try:
            # the start picture before its event: it waits, then is stored
            pub.publish(t_dev, [message(DEV, start.id, "start", FRAME)])
            wait_for(lambda: metric(hub, "snapshots_pending") == 1)
            pub.publish(topic(prefix, DEV, "events"), [batch(start, end)])
            pub.publish(topic(prefix, "cam-o", "events"), [batch(other_start)])
            best = message(DEV, end.id, "best", BEST)
            pub.publish(t_dev, [
                message(DEV, start.id, "start_crop", FCROP, width=80, height=120),
                best, best,  # a resend: stored once
            ])  # fmt: skip
            head = json.loads(header(DEV, end.id, "best_crop", BCROP).model_dump_json())
            traversal = json.dumps({**head, "event_id": "../../../etc/passwd"}).encode()
            cut = BEST[: len(BEST) // 2]  # a truncated JPEG, its header honest about the bytes
            cut_head = json.dumps({**head, "bytes": len(cut), "width": 320, "height": 240})
            hostile = [
                (t_other, message("cam-o", end.id, "best_crop", BCROP, width=96, height=96)),
                (t_dev, raw_message(traversal, BCROP)),
                (t_dev, b"EWS1" + b"\x00" * (10 * 1024 * 1024)),  # 10 MB
                (t_dev, message(DEV, end.id, "best_crop", BCROP)),  # 96x96, header says 320x240
                (t_dev, raw_message(cut_head.encode(), cut)),
                (t_dev, message("cam-o", end.id, "best_crop", BCROP, width=96, height=96)),
                (t_dev, b'{"v": 1, "device_id": "cam-s"}'),
                (t_dev, message(DEV, str(uuid.uuid4()), "best", BEST)),  # an event never sent
            ]
            for t, payload in hostile:
                pub.publish(t, [payload])
            pub.publish(t_dev, [message(DEV, end.id, "best_crop", BCROP, width=96, height=96)])
            wait_for(lambda: metric(hub, "snapshots_stored_total") >= 4, timeout=15)
            wait_for(lambda: metric(hub, 'snapshots_rejected_total{reason="unknown_event"}'), 10)
            assert metric(hub, "snapshots_stored_total") == 4
            assert metric(hub, "snapshots_duplicate_total") == 1
            assert metric(hub, "snapshots_waited_total") >= 2  # the start one, the unknown one
            for reason, n in (("event_device_mismatch", 1), ("bad_header", 1), ("too_large", 1),
                              ("dims_mismatch", 1), ("not_jpeg", 1), ("device_mismatch", 1),
                              ("not_snapshot", 1), ("unknown_event", 1)):  # fmt: skip
                assert metric(hub, f'snapshots_rejected_total{{reason="{reason}"}}') == n, reason
            health = hub.get("/healthz")
            assert health["ok"] and health["snapshots"]["stored"] == 4
            assert hub.p.poll() is None

            # served byte-exact, with its headers, 304, behind the token
            code, hdrs, body = fetch(snap_url(hub, end.id), AUTH)
            assert (code, body, hdrs["content-type"]) == (200, BEST, "image/jpeg")
            assert hdrs["etag"] == f'"{hashlib.sha256(BEST).hexdigest()[:32]}"'
            assert "immutable" in hdrs["cache-control"] and "private" in hdrs["cache-control"]
            assert fetch(snap_url(hub, end.id), {**AUTH, "If-None-Match": hdrs["etag"]})[0] == 304
            assert fetch(snap_url(hub, end.id))[0] == 401
            # any event of the track: the start event asked for the best picture, crops
            assert fetch(snap_url(hub, start.id), AUTH)[2] == FRAME
            assert fetch(snap_url(hub, start.id, "best"), AUTH)[2] == BEST
            assert fetch(snap_url(hub, start.id, "crop"), AUTH)[2] == BCROP
            assert fetch(snap_url(hub, end.id, "start_crop"), AUTH)[2] == FCROP
            assert fetch(snap_url(hub, other_start.id), AUTH)[0] == 404
            events = {e["id"]: e for e in hub.get(f"/api/events?device={DEV}", TOKEN)["events"]}
            assert events[start.id]["snapshots"] == ["start", "start_crop"]  # as the device sent
            assert events[end.id]["snapshots_stored"] == ["best", "best_crop"]
            if db_url.startswith("sqlite"):
                files = sorted(p.name for p in Path(f"{db_url[10:]}.snapshots").rglob("*.jpg"))
                assert files == sorted(f"{e}.{k}.jpg" for e, k in (
                    (start.id, "start"), (start.id, "start_crop"), (end.id, "best"),
                    (end.id, "best_crop")))  # fmt: skip

            hub.stop()  # a restart: what was stored is still served
            hub = HubProc(db_url, port, prefix, tmp_path / "hub2.log", *args, env=env)
            assert fetch(snap_url(hub, start.id, "start_crop"), AUTH)[2] == FCROP
            assert fetch(snap_url(hub, end.id), AUTH)[2] == BEST
            pub.publish(t_dev, [best])  # resent after the restart: still a duplicate
            wait_for(lambda: metric(hub, "snapshots_duplicate_total") == 1, timeout=10)
            assert metric(hub, "snapshots_stored_total") == 0
        finally:
            pub.close()
            hub.stop()


def test_retention_by_size_then_by_age(db_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    pics = [jpeg(n) for n in ("astronaut", "camera", "chelsea")]
    tracks = [track(DEV, BOOT, i, seq0=2 * i) for i in range(3)]
    limit = len(pics[1]) + len(pics[2])  # the two newest fit
    max_age_s = 6.0
    with mosquitto(tmp_path) as port:
        hub = HubProc(
            db_url, port, prefix, tmp_path / "hub.log",
            "--snapshot-max-bytes", str(limit), "--snapshot-sweep-s", "0.2",
            "--snapshot-max-age-days", str(max_age_s / 86400),
        )  # fmt: skip
        pub = Publisher(port)
        try:
            pub.publish(topic(prefix, DEV, "events"), [batch(*[e for t in tracks for e in t])])
            t0 = time.monotonic()
            for i, (start, _end) in enumerate(tracks):
                pub.publish(
                    topic(prefix, DEV, "snapshots"), [message(DEV, start.id, "start", pics[i])]
                )
                wait_for(lambda i=i: metric(hub, "snapshots_stored_total") == i + 1)  # type: ignore[misc]
            wait_for(lambda: metric(hub, 'snapshots_deleted_total{reason="size"}') == 1)
            assert time.monotonic() - t0 < max_age_s - 1, "too slow to tell size from age"
            assert fetch(snap_url(hub, tracks[0][0].id))[0] == 404  # the oldest went
            for i in (1, 2):
                assert fetch(snap_url(hub, tracks[i][0].id))[2] == pics[i]
            assert metric(hub, "snapshots_kept_bytes") == limit
            wait_for(lambda: metric(hub, 'snapshots_deleted_total{reason="age"}') == 2, timeout=15)
            assert metric(hub, "snapshots_kept") == 0
            assert fetch(snap_url(hub, tracks[2][0].id))[0] == 404
            if db_url.startswith("sqlite"):
                assert not list(Path(f"{db_url[10:]}.snapshots").rglob("*.jpg"))
            assert hub.get("/healthz")["ok"]
        finally:
            pub.close()
            hub.stop()


def test_two_workers_store_each_snapshot_once_even_before_its_event(tmp_path: Path) -> None:
    """One shared subscription, two workers, one PostgreSQL: the pictures go out before
    their events, so a worker may hold one whose event the other is storing."""
    from .hub_support import pg_database

    prefix = f"t{uuid.uuid4().hex[:8]}"
    pics = [jpeg(n, 160, 120) for n in ("astronaut", "camera", "chelsea", "coffee", "moon")]
    tracks = [track(DEV, BOOT, i, seq0=2 * i) for i in range(10)]
    with pg_database() as url, mosquitto(tmp_path) as port:
        a = HubProc(url, port, prefix, tmp_path / "a.log", "--group", "g1")
        b = HubProc(url, port, prefix, tmp_path / "b.log", "--group", "g1")
        pub = Publisher(port)
        try:
            sent: dict[tuple[str, str], bytes] = {}
            for i, (start, end) in enumerate(tracks):
                for ev, kind in ((start, "start"), (end, "best")):
                    pic = pics[(i + (kind == "best")) % len(pics)]
                    sent[(ev.id, kind)] = pic
                    msg = message(DEV, ev.id, kind, pic, width=160, height=120)
                    pub.publish(topic(prefix, DEV, "snapshots"), [msg, msg])

            def total(name: str) -> float:
                return metric(a, name) + metric(b, name)

            # every picture waits (for an event no worker has yet), split between the two;
            # the two copies of one may wait in both workers
            wait_for(lambda: total('messages_received_total{kind="snapshots"}') == 2 * len(sent))
            waiting = total("snapshots_pending")
            assert len(sent) <= waiting <= 2 * len(sent)
            assert metric(a, "snapshots_pending") > 0 < metric(b, "snapshots_pending")
            for i in range(0, len(tracks), 5):  # two batches: either worker may take either
                pub.publish(topic(prefix, DEV, "events"),
                            [batch(*[e for t in tracks[i : i + 5] for e in t])])  # fmt: skip

            wait_for(lambda: total("snapshots_stored_total") >= len(sent), timeout=15)
            assert total("snapshots_stored_total") == len(sent) == 20
            assert total("snapshots_duplicate_total") == 20  # each was sent twice

            # both workers took part; which one stores a picture first is a race (the other's
            # copy is then a duplicate), so a slow worker may have stored none itself
            def handled(h: HubProc) -> float:
                return metric(h, "snapshots_stored_total") + metric(h, "snapshots_duplicate_total")

            assert handled(a) > 0 < handled(b)
            for (eid, kind), pic in sent.items():
                for hub in (a, b):  # any worker serves any snapshot: they are in the database
                    assert fetch(snap_url(hub, eid, kind))[2] == pic
            assert total('snapshots_rejected_total{reason="unknown_event"}') == 0
            assert total("snapshots_waited_total") == waiting
            wait_for(lambda: total("snapshots_pending") == 0)
        finally:
            pub.close()
            a.stop()
            b.stop()
