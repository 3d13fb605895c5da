"""Issue 10 case 12: a leading gap was not reported (a device's first 365 events never reached
the hub and /api/gaps was empty); gaps below a boot that found its outbox lost are labelled as
lost at the device."""

from __future__ import annotations

import uuid

from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import Store
from cloud_sync.schema import StatusV1
from tests.integration.hub_support import make_batch


def _gaps(store: Store, device: str | None = None) -> list[tuple[str, int, int, str]]:
    return [(g["device_id"], g["from_seq"], g["to_seq"], g["cause"]) for g in store.gaps(device)]


def test_a_leading_gap_from_seq_0_is_reported(store: Store) -> None:
    """issue 10 case 12: events 0..364 never arrived; /api/gaps said nothing."""
    store.write([make_batch("cam-1", str(uuid.uuid4()), range(365, 400))])
    assert _gaps(store) == [("cam-1", 0, 364, "in_transit")]
    (g,) = store.gaps()
    assert g["missing"] == 365 and g["after_ts"] is None and g["before_ts"] is not None
    client = TestClient(Hub(store).app)
    assert client.get("/api/gaps?device=cam-1").json()["gaps"][0]["from_seq"] == 0


def test_the_gap_below_a_boot_whose_outbox_was_lost_is_lost_at_the_device(store: Store) -> None:
    """issue 10 case 12 / lead's contract 3: the status birth carries seq_start and outbox_reset;
    the seqs below a reset boot's seq_start that never arrived were lost at the device."""
    b1, b2, b3 = (str(uuid.uuid4()) for _ in range(3))
    store.write([make_batch("cam-2", b1, range(0, 50))])
    store.write(
        [],
        statuses=[
            StatusV1(device_id="cam-2", state="online", boot_id=b2, epoch=2, seq_start=100,
                     outbox_reset=True),
            StatusV1(device_id="cam-2", state="online", boot_id=b3, epoch=3, seq_start=200),
        ],
    )  # fmt: skip
    store.write(
        [make_batch("cam-2", b2, range(110, 150)), make_batch("cam-2", b3, range(200, 210))]
    )
    assert _gaps(store, "cam-2") == [
        ("cam-2", 50, 99, "outbox_reset"),  # boot 2 found its outbox gone: lost at the device
        ("cam-2", 100, 109, "in_transit"),  # boot 2's own first events never arrived
        ("cam-2", 150, 199, "in_transit"),  # below a boot whose outbox was intact: in transit
    ]
    assert store.gaps("cam-2")[0]["boot_id"] == b2
    store.write([make_batch("cam-2", b2, range(100, 110))])  # late: closes that piece only
    assert [g[1:3] for g in _gaps(store, "cam-2")] == [(50, 99), (150, 199)]


def test_no_gap_when_every_seq_from_0_is_stored(store: Store) -> None:
    store.write([make_batch("cam-3", str(uuid.uuid4()), range(0, 20))])
    assert store.gaps() == []
