"""A child process that appends to an outbox, for crash tests (``kill -9`` mid-write).

``python -m tests.support.outbox_writer DIR [--groups N] [--group K] [--then-die]``
prints ``ok <first_seq> <last_seq> <id,id,...>`` after each append has returned (the
events are committed); runs until killed unless ``--groups`` is given; with
``--then-die`` it SIGKILLs itself afterwards (an unclean stop: the WAL stays).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from cloud_sync.outbox import Outbox
from edge.events import uuid7
from tests.support.publisher_proc import make_events


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dir", type=Path)
    p.add_argument("--groups", type=int, default=0, help="0: until killed")
    p.add_argument("--group", type=int, default=5)
    p.add_argument("--then-die", action="store_true")
    a = p.parse_args()
    ob = Outbox(a.dir / "outbox.db", "cam1", uuid7(), state_path=a.dir / "state.json")
    print("open", ob.seq_start, ob.epoch, int(ob.outbox_reset), flush=True)
    n = 0
    while not a.groups or n < a.groups:
        evs = make_events(a.group)
        first = ob.stats().next_seq
        ob.append(evs)
        sys.stdout.write(f"ok {first} {first + len(evs) - 1} {','.join(e.id for e in evs)}\n")
        sys.stdout.flush()
        n += 1
    if a.then_die:
        os.kill(os.getpid(), signal.SIGKILL)
    ob.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
