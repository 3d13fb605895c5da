"""The delivery promise with the real daemon: `edge run` streams a face video through the
outbox to a private mosquitto while the broker is stopped and restarted, and the daemon
is killed with SIGKILL while the broker is down. Afterwards a subscriber has every event
that was committed, by seq, with no gap; a seq seen twice is the same event id."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.demo.broker import free_port
from tests.fixtures.video import DEFAULT_SPANS, face_video
from tests.support.edge_run import MQTT_SINK, device_toml, sync_toml
from tests.support.mosquitto import Broker
from tests.support.mqtt_sub import Subscriber

pytestmark = pytest.mark.slow


def config(tmp: Path, video: Path, port: int) -> str:
    # min_hits/max_missing small and updates frequent: many events per second to lose
    tracking = (
        "[tracking]\nmin_hits = 2\nmax_missing = 2\nupdate_interval_s = 0.2\n"
        "min_update_gap_s = 0.0\nupdate_score_delta = 0.01\n"
    )
    return device_toml(
        tmp / "data", video, health_port=None, sinks=MQTT_SINK, sync=sync_toml(port),
        device_id="cam-kill", stream="door", extra=tracking,
    )  # fmt: skip


def committed(db: Path) -> int:
    """Events committed so far: the outbox's next seq, read from its file."""
    with sqlite3.connect(db) as c:
        row = c.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
    return int(row[0]) if row else 0


def test_broker_restarts_and_daemon_kill9_lose_nothing_committed(tmp_path: Path) -> None:
    video, _ = face_video(tmp_path / "door.avi", 240, DEFAULT_SPANS)
    broker = Broker(tmp_path / "broker", free_port(), persistence=True).start()
    sub = Subscriber(broker.port, persistent=True)  # the broker queues for it while it is away
    cfg = tmp_path / "device.toml"
    cfg.write_text(config(tmp_path, video, broker.port))
    run = [sys.executable, "-m", "edge.cli.main", "-q", "run", "--config", str(cfg)]
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=log)
    outbox = tmp_path / "data" / "outbox.db"
    try:
        deadline = time.monotonic() + 30
        while len(sub.seqs()) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sub.seqs(), (tmp_path / "daemon.log").read_text()[-2000:]
        for _ in range(2):  # the broker goes away twice while the video streams
            broker.stop()
            time.sleep(1.5)
            broker.start()
            time.sleep(1.5)
        broker.stop()  # down: events pile up in the outbox only
        before = committed(outbox)
        time.sleep(2.5)
        assert committed(outbox) > before  # still detecting and committing
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(5)
        n = committed(outbox)  # everything committed before the kill
        backlog = n - len([s for s in sub.seqs() if s < n])
        assert backlog > 0  # some of it exists only in the killed daemon's outbox
        broker.start()
        daemon = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not set(range(n)) <= set(sub.seqs()):
            time.sleep(0.1)
        got = set(sub.seqs())
        missing = sorted(set(range(n)) - got)
        assert not missing, f"{len(missing)} committed events never arrived: {missing[:10]}"
        with sub.lock:
            assert all(len(ids) == 1 for ids in sub.ids.values()), "a seq with two event ids"
        assert sub.invalid == []
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
        log.close()
        sub.close()
        broker.stop()
