"""The daemon's listener: a ``/metrics`` whose collector fails answers 500 in one line
and the listener keeps serving (``/healthz`` still answers, its thread stays up)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from edge.health import HealthServer


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def server() -> Iterator[HealthServer]:
    calls = {"n": 0}

    def metrics() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("collector bug")
        return "# HELP x_total a counter\n# TYPE x_total counter\nx_total 1.0\n"

    def health() -> tuple[bool, dict[str, Any]]:
        return True, {"ok": True}

    s = HealthServer("127.0.0.1", 0, health, metrics)
    s.start()
    yield s
    s.stop()


def test_a_failing_collector_is_a_500_and_the_listener_stays_up(server: HealthServer) -> None:
    code, body = _get(server.port, "/metrics")
    assert code == 500 and body == "metrics failed: RuntimeError\n"
    assert _get(server.port, "/healthz") == (200, '{"ok": true}')
    assert _get(server.port, "/metrics") == (200, "# HELP x_total a counter\n"
                                             "# TYPE x_total counter\nx_total 1.0\n")  # fmt: skip
    assert all(c.ok for c in server.health())
