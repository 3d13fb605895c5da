"""edge.malloc: one malloc arena for the daemon's threads, and a trim after start-up.

The arena count is read from glibc's own ``malloc_stats()`` (one "Arena N:" block per
arena) in a child process whose threads each allocate and free, as the daemon's do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge import malloc

glibc = pytest.mark.skipif(
    malloc._libc() is None, reason="glibc only: this libc has no mallopt/malloc_trim"
)

CHILD = """
import ctypes, sys, threading
from edge import malloc
if sys.argv[1] == "limit":
    assert malloc.limit_arenas(1)
def work():
    blocks = [bytes(4096) for _ in range(2000)]  # past pymalloc's 512 B: glibc's malloc
    del blocks
ts = [threading.Thread(target=work) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
ctypes.CDLL(None).malloc_stats()  # to stderr
"""


def arenas(mode: str, env: dict[str, str] | None = None) -> int:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env=env
    )
    return sum(line.startswith("Arena ") for line in r.stderr.splitlines())


@glibc
def test_threads_share_one_arena_when_limited() -> None:
    assert arenas("free") > 1  # without the limit glibc gives threads their own
    assert arenas("limit") == 1


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc.limit_arenas(1) is False  # theirs stands; ours is not applied


TRIM = """
import re
from edge import malloc
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
blocks = [bytes(16384) for _ in range(4000)]  # 64 MiB of heap
keep = blocks[::200]  # pins the heap: free() alone cannot shrink it
del blocks
before = rss()
assert malloc.trim()
print(before - rss())
"""


@glibc
def test_trim_hands_freed_heap_pages_back() -> None:
    r = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True, check=True)
    assert int(r.stdout) > 32 * 1024  # KiB: most of the 64 MiB freed inside the heap


def test_without_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(malloc, "_libc", lambda: None)  # musl, macOS: nothing to tune
    assert malloc.limit_arenas(1) is False
    assert malloc.trim() is False


def test_the_daemon_limits_arenas_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from pathlib import Path

    import edge.daemon
    from edge.cli import run_cmd

    calls: list[str] = []
    monkeypatch.setattr(malloc, "limit_arenas", lambda n=1: calls.append(f"limit {n}") or True)

    class FakeDaemon:
        def __init__(self, path: Path) -> None:
            calls.append("daemon")

        def install_signals(self) -> None: ...

        def run(self) -> int:
            return 0

    monkeypatch.setattr(edge.daemon, "Daemon", FakeDaemon)
    assert run_cmd.run(argparse.Namespace(config=Path("x.toml"), log_json=False)) == 0
    assert calls == ["limit 1", "daemon"]


def test_settle_freezes_the_living_and_a_later_settle_frees_what_died_since() -> None:
    import gc
    import weakref

    from edge.daemon.core import settle

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    gone = weakref.ref(a)
    try:
        settle()
        assert gc.get_freeze_count() > 0  # full collections skip the start-up's objects
        del a, b  # the cycle dies after it was frozen (the old generation after a reload)
        gc.collect()
        assert gone() is not None  # frozen: a plain collection does not see it
        settle()
        assert gone() is None  # settle thaws first: nothing frozen leaks
    finally:
        gc.unfreeze()
