"""Mutual TLS: the client certificate's CN is the device's identity under the example ACL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloud_sync.sink import MqttSink
from edge.config import SyncConfig, TLSConfig
from tests.support.certs import make_pki
from tests.support.mosquitto import Broker, free_port
from tests.support.publisher_proc import make_events

ACL = Path(__file__).resolve().parents[2] / "examples" / "mosquitto" / "acl"

pytestmark = pytest.mark.slow


def test_mutual_tls_identity_is_the_certificate_cn(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", ["cam1"])
    extra = "\n".join(
        [
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'broker.crt'}",
            f"keyfile {pki / 'broker.key'}",
            "require_certificate true",
            "use_identity_as_username true",
            f"acl_file {ACL}",
            "allow_anonymous false",
        ]
    )
    b = Broker(tmp_path / "broker", free_port(), extra=extra).start()
    tls = TLSConfig(ca_file=pki / "ca.crt", cert_file=pki / "cam1.crt", key_file=pki / "cam1.key")
    # delivery = "broker": what is tested is the broker's verdict (PUBACK codes), no hub here
    base = {"port": b.port, "tls": tls, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
            "delivery": "broker"}  # fmt: skip
    try:
        # cam1's certificate, cam1's topics: delivered (PUBACKs with success codes)
        with MqttSink(SyncConfig.model_validate(base), "cam1", tmp_path / "a") as own:
            own.emit_many(make_events(5))
            assert own.publisher.wait_drained(10)
            assert own.publisher.connects == 1
        # cam1's certificate claiming to be cam2: the broker refuses every batch
        with MqttSink(SyncConfig.model_validate(base), "cam2", tmp_path / "b") as forged:
            forged.emit_many(make_events(5))
            time.sleep(2.0)
            assert forged.outbox.stats().depth == 5  # never acknowledged, kept
        # no client certificate at all: the TLS handshake fails, never connected
        plain = SyncConfig.model_validate({**base, "tls": TLSConfig(ca_file=pki / "ca.crt")})
        with MqttSink(plain, "cam1", tmp_path / "c") as anon:
            assert not anon.publisher.connected.wait(1.5)
    finally:
        b.stop()
