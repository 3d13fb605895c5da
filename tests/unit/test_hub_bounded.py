"""The queue between the MQTT thread and the writer: bounded by items and by bytes."""

from __future__ import annotations

import threading
import time

from cloud_sync.hub.bounded import BoundedQueue


def test_put_blocks_at_the_item_bound_until_the_writer_drains() -> None:
    q: BoundedQueue[int] = BoundedQueue(max_items=3, max_bytes=10**6)
    for i in range(3):
        assert q.put(i, 1)
    assert not q.put(99, 1, timeout=0.05)  # full: refused after the timeout
    done = threading.Event()

    def producer() -> None:
        q.put(3, 1)
        done.set()

    threading.Thread(target=producer).start()
    time.sleep(0.05)
    assert not done.is_set()
    assert q.get_many(2, wait=0.1) == [0, 1]
    assert done.wait(1.0)
    assert q.get_many(10, wait=0.1) == [2, 3]
    assert q.high_water_items == 3


def test_byte_bound_and_a_lone_oversize_item() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=100, max_bytes=100)
    assert q.put("a", 60)
    assert not q.put("b", 60, timeout=0.02)  # 120 bytes > 100
    assert q.get_many(10, wait=0.1) == ["a"]
    assert q.put("big", 500, timeout=0.02)  # alone, any item fits
    assert q.nbytes == 500


def test_get_many_times_out_empty() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, 1)
    t0 = time.monotonic()
    assert q.get_many(5, wait=0.05) == []
    assert time.monotonic() - t0 >= 0.04
