"""What `edge validate-config` accepts, a real broker accepts: the [sync] limits are the broker's.

The longest device id and client id, a prefix with spaces and non-ASCII levels, at the
length limit: each config is parsed from TOML (as a device reads it), then its MQTT sink
connects to mosquitto and its events arrive under ``<prefix>/<device>/events``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.sink import MqttSink
from edge.config import parse_config
from edge.wire import CLIENT_ID_MAX, DEVICE_ID_MAX, TOPIC_PREFIX_MAX
from tests.support.mosquitto import Broker, free_port
from tests.support.mqtt_sub import Subscriber
from tests.support.publisher_proc import make_events

pytestmark = pytest.mark.slow

DEVICE = "d" * (DEVICE_ID_MAX - 4) + "-9.Z"
CLIENT = ("yard-nvr.cam:1_" * 20)[: CLIENT_ID_MAX - 1] + "Z"
LONG_PREFIX = ("acme/" * 40)[: TOPIC_PREFIX_MAX - 1] + "x"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"), free_port()).start()
    yield b
    b.stop()


def _config(port: int, sync: str) -> str:
    return f"""\
device_id = "{DEVICE}"

[[streams]]
name = "cam0"
source = "0"
detectors = ["face"]

[detectors.face]
model = "blazeface-short"

[[sinks]]
type = "mqtt"

[sync]
port = {port}
reconnect_min_s = 0.05
reconnect_max_s = 0.2
{sync}
"""


@pytest.mark.parametrize(
    "sync",
    [
        f'client_id = "{CLIENT}"\nprotocol = "5"',
        f'client_id = "{CLIENT}"\nprotocol = "3.1.1"',
        'prefix = "acme corp/site 1/édgewise-ü"\nusername = "Gerät 1"',
        f'prefix = "{LONG_PREFIX}"',
    ],
    ids=["client-id-v5", "client-id-v311", "unicode-prefix", "long-prefix"],
)
def test_a_config_at_the_limits_is_one_the_broker_takes(
    sync: str, broker: Broker, tmp_path: Path
) -> None:
    assert len(DEVICE) == DEVICE_ID_MAX and len(CLIENT) == CLIENT_ID_MAX
    assert len(LONG_PREFIX) == TOPIC_PREFIX_MAX
    cfg = parse_config(_config(broker.port, sync), "device.toml")
    assert cfg.sync is not None
    sub = Subscriber(broker.port, prefix=cfg.sync.prefix)
    try:
        with MqttSink(cfg.sync, cfg.device_id, tmp_path) as sink:
            assert sink.publisher.connected.wait(10), "the broker refused the CONNECT"
            sink.emit_many(make_events(3))
            deadline = time.monotonic() + 10
            while len(sub.seqs()) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(sub.seqs()) == 3, sub.seqs()  # every event arrived
            time.sleep(0.2)
            assert sink.publisher.connects == 1  # never dropped for a bad packet
        assert not sub.invalid
        assert {b.device_id for b in sub.batches} == {DEVICE}
    finally:
        sub.close()
