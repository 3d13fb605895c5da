"""The hub's default MQTT client id: not derivable from the host and port, stable across a
restart on the same database, different per worker; never published."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

from cloud_sync.hub.db import open_store
from cloud_sync.hub.identity import META_KEY, default_client_id, worker_label


def test_the_default_client_id_is_stable_per_database_and_unguessable(tmp_path: Path) -> None:
    url_a = f"sqlite:///{tmp_path}/a.db"
    a = open_store(url_a)
    a.migrate()
    host = socket.gethostname()
    first = default_client_id(a, host, 8080)
    # 96 bits of HMAC and nothing else: no room for the host name and port the old
    # default (edge-hub-<host>-<port>) was made of
    assert re.fullmatch(r"edge-hub-[0-9a-f]{24}", first), first
    a.close()
    # a restart: the same database gives the same id (the broker session survives)
    again = open_store(url_a)
    again.migrate()
    assert default_client_id(again, host, 8080) == first
    # another worker on the same database: another id
    assert default_client_id(again, host, 8081) != first
    assert default_client_id(again, "other-host", 8080) != first
    # the same host and port on another database: another id; knowing host and port is
    # not enough to derive it, the database's secret is needed
    b = open_store(f"sqlite:///{tmp_path}/b.db")
    b.migrate()
    assert default_client_id(b, host, 8080) != first
    assert worker_label(first) != first and first[9:] not in worker_label(first)


def test_workers_starting_together_agree_on_the_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    open_store(url).migrate()
    got: list[str] = []
    stores = [open_store(url) for _ in range(4)]
    threads = [threading.Thread(target=lambda s=s: got.append(s.secret(META_KEY))) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len(set(got)) == 1 and len(got[0]) == 64
