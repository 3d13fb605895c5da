"""Client ids are bound to logins: the shipped mosquitto config (examples/mosquitto/), run
as shipped (only its port and paths rewritten), against the real `edge-hub serve` and the
real device publisher.

mosquitto's ACL file pins topics to a login (``%u``) but lets any client pick any client id,
and a client id names a session: connecting with another's id disconnects it, or takes over
(or, with clean start, discards) its persistent session. The shipped config sets
``use_username_as_clientid true`` (with mutual TLS on top of ``use_identity_as_username``),
so the broker replaces the id a client asks for with its login.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.sink import MqttSink
from tests.support.publisher_proc import make_events
from tests.support.shipped_broker import Fleet, Variant, shipped_broker

from .hub_support import HubProc, pg_database, wait_for

pytestmark = pytest.mark.slow

PREFIX = "edgewise/v1"  # the shipped ACL names it
DENIED = 0x87  # MQTT 5 "Not authorized"


@pytest.fixture(params=["password", "mtls"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    variant: Variant = request.param
    with shipped_broker(tmp_path, variant) as f:
        yield f


@pytest.fixture()
def password_fleet(tmp_path: Path) -> Iterator[Fleet]:
    with shipped_broker(tmp_path, "password") as f:
        yield f


def start_hub(fleet: Fleet, login: str, db: str, log: Path, *extra: str) -> HubProc:
    port, args, env = fleet.hub_args(login)
    return HubProc(db, port, PREFIX, log, *args, *extra, env=env)


def stored(hub: HubProc, device: str) -> int:
    try:
        return int(hub.get(f"/api/devices/{device}")["events"])
    except urllib.error.HTTPError:  # 404: nothing from it yet
        return 0


def test_another_devices_client_id_does_not_disconnect_it(fleet: Fleet, tmp_path: Path) -> None:
    """cam-2, logged in as itself, connects with client id "cam-1": cam-1 stays connected
    and every event it sends is stored and acknowledged; cam-2 gets a session of its own
    (or is refused), with cam-2's rights only."""
    hub = start_hub(fleet, "_hub-1", f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "hub.log")
    cam1 = MqttSink(fleet.device_sync("cam-1"), "cam-1", tmp_path / "cam-1")
    intruder = None
    try:
        cam1.emit_many(make_events(5))
        assert cam1.publisher.wait_drained(15), "the hub never acknowledged cam-1's events"
        intruder = fleet.client("cam-2", "cam-1")
        time.sleep(1.0)  # a takeover would have cut cam-1 by now (and paho reconnects it)
        cam1.emit_many(make_events(5))
        assert cam1.publisher.wait_drained(15), "cam-1's events after the intrusion were lost"
        time.sleep(0.5)
        assert cam1.publisher.connects == 1, (
            f"cam-1 was disconnected {cam1.publisher.connects - 1} time(s) by a client that"
            f" asked for its client id; broker log:\n{fleet.log()[-1500:]}"
        )
        assert wait_for(lambda: stored(hub, "cam-1") == 10)
        if intruder.accepted:  # its own session: cam-2's, not cam-1's
            assert intruder.disconnects == []
            assert intruder.publish(f"{PREFIX}/cam-1/events") == DENIED
            assert intruder.publish(f"{PREFIX}/cam-2/telemetry") in (0, 0x10)
    finally:
        if intruder is not None:
            intruder.close()
        cam1.close()
        hub.stop()


def test_a_device_cannot_take_over_the_hubs_queued_session(fleet: Fleet, tmp_path: Path) -> None:
    """While the hub worker is down, the broker queues cam-1's events in its persistent
    session. cam-2 connects with the hub's client id (and with its login) four ways (clean
    start or not); the hub, back, still gets every queued event, and cam-2 none.

    cam-1 runs with ``delivery = "broker"``, so it never resends: only the broker's queue
    for the hub's session can bring the events to the hub."""
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    hub_cid = "edge-hub-hubhost-8080"  # a client id an attacker can guess
    hub = start_hub(fleet, "_hub-1", db, tmp_path / "hub-a.log", "--client-id", hub_cid)
    cam1 = MqttSink(fleet.device_sync("cam-1", delivery="broker"), "cam-1", tmp_path / "cam-1")
    try:
        cam1.emit_many(make_events(1))
        assert cam1.publisher.wait_drained(15)
        wait_for(lambda: stored(hub, "cam-1") == 1)  # the hub's subscriptions are in place
        hub.stop()
        cam1.emit_many(make_events(4))
        assert cam1.publisher.wait_drained(15)  # PUBACK'd: queued for the hub's session
        got: list[tuple[str, bytes]] = []
        for cid in (hub_cid, "_hub-1"):
            for clean in (True, False):
                thief = fleet.client("cam-2", cid, clean_start=clean, session_expiry_s=3600)
                time.sleep(0.5)
                got += thief.messages
                thief.close()
        assert got == [], f"cam-2 received the hub's messages: {[t for t, _ in got]}"
        hub = start_hub(fleet, "_hub-1", db, tmp_path / "hub-b.log", "--client-id", hub_cid)
        try:
            wait_for(lambda: stored(hub, "cam-1") == 5, timeout=15)
        except AssertionError:
            n = stored(hub, "cam-1")
            raise AssertionError(
                f"the hub got {n - 1} of the 4 events queued for its session;"
                f" broker log:\n{fleet.log()[-1500:]}"
            ) from None
    finally:
        cam1.close()
        hub.stop()


def test_acl_holds_under_the_shipped_config(fleet: Fleet, tmp_path: Path) -> None:
    """The ACL guarantees, checked on the shipped config with per-worker hub logins: a device
    publishes only under its own id (whatever client id it asks for), reads only its own
    commands and acks; only hub workers write acks, commands and the hub-online topic."""
    hub = fleet.client("_hub-1", "whatever-the-hub-asks")
    cam1 = fleet.client("cam-1", "cam-1")
    cam2 = fleet.client("cam-2", "cam-2")
    sneaky = fleet.client("cam-3", "_hub-2")  # cam-3 asking for the other worker's id
    clients = [hub, cam1, cam2, sneaky]
    try:
        assert hub.accepted and cam1.accepted and cam2.accepted
        assert hub.subscribe(f"$share/edge-hub/{PREFIX}/+/events", f"{PREFIX}/+/status") == [1, 1]
        assert cam1.subscribe(f"{PREFIX}/cam-1/cmd/+", f"{PREFIX}/cam-1/ack") == [1, 1]
        # cam-2 snoops on cam-1 (mosquitto 2.0 grants the SUBACK and filters on delivery)
        cam2.subscribe(f"{PREFIX}/cam-1/cmd/+", f"{PREFIX}/cam-1/ack", f"{PREFIX}/+/events")
        sneaky.subscribe(f"{PREFIX}/#")

        # devices: own topics yes, another's no, hub topics no (0x10: no subscribers, a success)
        assert cam1.publish(f"{PREFIX}/cam-1/events") in (0, 0x10)
        assert cam1.publish(f"{PREFIX}/cam-1/snapshots", b"EWS1") in (0, 0x10)
        assert cam1.publish(f"{PREFIX}/cam-2/snapshots", b"EWS1") == DENIED
        assert cam1.publish(f"{PREFIX}/cam-2/events") == DENIED
        assert cam1.publish(f"{PREFIX}/cam-2/status") == DENIED
        assert cam2.publish(f"{PREFIX}/cam-1/ack") == DENIED
        assert cam2.publish(f"{PREFIX}/cam-1/cmd/config") == DENIED
        assert cam2.publish(f"{PREFIX}/_hub/online") == DENIED
        if sneaky.accepted:
            assert sneaky.publish(f"{PREFIX}/cam-1/events") == DENIED
            assert sneaky.publish(f"{PREFIX}/cam-1/ack") == DENIED
            assert sneaky.publish(f"{PREFIX}/_hub/online") == DENIED
        # the hub worker, under its own login: acks, commands, the announcement
        assert hub.publish(f"{PREFIX}/cam-1/ack", b"ack") in (0, 0x10)
        assert hub.publish(f"{PREFIX}/cam-1/cmd/snapshot", b"cmd") in (0, 0x10)
        assert hub.publish(f"{PREFIX}/_hub/online", b"on") in (0, 0x10)
        assert hub.publish(f"{PREFIX}/cam-1/events") == DENIED  # the hub never poses as one
        time.sleep(0.5)
        assert sorted(t for t, _ in cam1.messages) == [
            f"{PREFIX}/cam-1/ack",
            f"{PREFIX}/cam-1/cmd/snapshot",
        ]
        assert [t for t, _ in hub.messages] == [f"{PREFIX}/cam-1/events"]
        assert cam2.messages == []
        # of everything under the prefix, a device reads only the hub's announcement
        assert [t for t, _ in sneaky.messages] == [f"{PREFIX}/_hub/online"]
    finally:
        for c in clients:
            c.close()


def test_two_hub_workers_with_their_own_logins_share_the_load(
    password_fleet: Fleet, tmp_path: Path
) -> None:
    """`edge-hub serve` as _hub-1 and _hub-2, one shared-subscription group, one PostgreSQL:
    each stores part of three devices' events, every event is stored once and acknowledged."""
    fleet = password_fleet
    devices = ["cam-1", "cam-2", "cam-3"]
    with pg_database() as db:
        a = start_hub(fleet, "_hub-1", db, tmp_path / "a.log", "--group", "g1")
        b = start_hub(fleet, "_hub-2", db, tmp_path / "b.log", "--group", "g1")
        sinks = [
            MqttSink(fleet.device_sync(d, batch_max_events=5), d, tmp_path / d) for d in devices
        ]
        try:
            for _ in range(8):
                for s in sinks:
                    s.emit_many(make_events(5))
            for s in sinks:
                assert s.publisher.wait_drained(30), f"{s.device_id}: not all acknowledged"
            wait_for(lambda: sum(stored(a, d) for d in devices) == 3 * 40)
            sa, sb = (metric(h, "edge_hub_events_stored_total") for h in (a, b))
            assert sa + sb == 3 * 40, (sa, sb)
            assert sa > 0 and sb > 0, f"the broker did not split the load: {sa} / {sb}"
            assert a.get("/api/gaps") == {"gaps": []}
        finally:
            for s in sinks:
                s.close()
            a.stop()
            b.stop()


def metric(hub: HubProc, name: str) -> int:
    text = urllib.request.urlopen(hub.url("/metrics")).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"{name} not in /metrics")
