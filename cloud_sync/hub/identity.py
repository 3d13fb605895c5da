"""A hub worker's MQTT client id: unguessable by default, stable across restarts.

A worker's broker session (and the QoS 1 messages the broker queues for it while it
restarts) belongs to its client id. Where the broker does not bind client ids to logins,
any client that knows the id can connect with it, kick the worker off and take or
discard its session. The old default, ``edge-hub-<host>-<http port>``, could be guessed.

The default is now ``edge-hub-`` + HMAC-SHA256(secret, host + http port), first 24 hex
digits (96 bits), where ``secret`` is 256 random bits the first worker stores in the
hub's database (``hub_meta``). So:
- the same worker (host, port, database) gets the same id after a restart: its
  persistent session survives;
- two workers on one database get different ids (different host or port);
- nobody without the database can derive it from the host name and port.

The id is never logged or published: the hub-online announcement and the log carry
``worker_label``, a one-way hash of it.
"""

from __future__ import annotations

import hashlib
import hmac

from cloud_sync.hub.db import Store

META_KEY = "mqtt_client_id_secret"


def derive_client_id(secret: str, host: str, http_port: int) -> str:
    mac = hmac.new(secret.encode(), f"{host}\n{http_port}".encode(), hashlib.sha256)
    return f"edge-hub-{mac.hexdigest()[:24]}"


def default_client_id(store: Store, host: str, http_port: int) -> str:
    """This worker's client id, from the database's secret (made on first use)."""
    return derive_client_id(store.secret(META_KEY), host, http_port)


def worker_label(client_id: str) -> str:
    """A name for logs and HubOnlineV1 that does not give the client id away."""
    return "hub-" + hashlib.sha256(b"edge-hub worker\n" + client_id.encode()).hexdigest()[:12]
