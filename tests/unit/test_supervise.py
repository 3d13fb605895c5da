"""edge.supervise: a thread that dies is noticed, restarted within bounds, then fatal."""

from __future__ import annotations

import threading
import time

from edge.supervise import GuardedThread


def _wait(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_crashing_target_is_restarted_and_then_fatal() -> None:
    calls: list[int] = []

    def boom() -> None:
        calls.append(1)
        raise OSError("disk on fire")

    t = GuardedThread("t", boom, max_restarts=2, backoff_s=(0.01, 0.02))
    t.start()
    assert _wait(lambda: t.fatal)
    h = t.health()
    assert not h.ok and h.fatal and "disk on fire" in (h.reason or "")
    assert len(calls) == 3 and t.restarts == 2
    assert t.join(1.0)


def test_a_target_that_recovers_stays_healthy_and_counts_the_restart() -> None:
    stop = threading.Event()
    state = {"n": 0}

    def flaky() -> None:
        state["n"] += 1
        if state["n"] == 1:
            raise ValueError("once")
        stop.wait()

    t = GuardedThread("t", flaky, stop=stop, backoff_s=(0.01, 0.02))
    t.start()
    assert _wait(lambda: state["n"] == 2)
    h = t.health()
    assert h.ok and h.restarts == 1 and "once" in (h.reason or "")
    stop.set()
    assert t.join(1.0)
    assert t.health().ok


def test_returning_while_not_stopped_counts_as_a_death() -> None:
    t = GuardedThread("t", lambda: None, max_restarts=0, backoff_s=(0.01, 0.01))
    t.start()
    assert _wait(lambda: t.fatal)
    assert "returned" in (t.health().reason or "")


def test_a_finite_target_that_returns_is_fine() -> None:
    t = GuardedThread("t", lambda: None, forever=False)
    t.start()
    assert t.join(1.0)
    assert t.health().ok


def test_a_thread_that_stops_beating_is_stalled() -> None:
    stop = threading.Event()
    t = GuardedThread("t", stop.wait, stop=stop, stall_after_s=0.05)
    t.start()
    assert _wait(lambda: not t.health().ok)
    assert "stalled" in (t.health().reason or "")
    t.beat()
    assert t.health().ok
    stop.set()
    assert t.join(1.0)
