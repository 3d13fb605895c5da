"""issue 10: ``kill -9`` while the outbox is being written, several rounds."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_kill9_mid_write_keeps_every_returned_append_and_never_reuses_a_seq(
    tmp_path: Path,
) -> None:
    """Every append that returned before SIGKILL is in the file afterwards, with its id, and
    the seqs of all rounds together have no repeat."""
    rng = random.Random(1234)
    returned: dict[int, str] = {}  # seq -> event id, from appends that returned
    last_start = -1
    for _round in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.outbox_writer", str(tmp_path)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        opened = proc.stdout.readline().split()
        assert opened[0] == "open", opened
        seq_start = int(opened[1])
        assert seq_start > last_start  # a new boot never starts below the last
        assert int(opened[3]) == 0  # kill -9 is not damage: no reset
        last_start = seq_start
        deadline = time.monotonic() + rng.uniform(0.2, 0.8)
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)  # mid-write, at a random point
        proc.wait(10)
        lines += proc.stdout.read().splitlines()  # what it printed before dying
        for line in lines:
            parts = line.split()
            if len(parts) != 4 or parts[0] != "ok":
                continue
            first, last, ids = int(parts[1]), int(parts[2]), parts[3].split(",")
            for seq, eid in zip(range(first, last + 1), ids, strict=True):
                assert seq not in returned, f"seq {seq} reused"
                returned[seq] = eid
    assert len(returned) > 100
    with sqlite3.connect(tmp_path / "outbox.db") as c:
        stored = {
            int(s): json.loads(p)["id"] for s, p in c.execute("SELECT seq, payload FROM events")
        }
    missing = [s for s in returned if stored.get(s) != returned[s]]
    assert not missing, f"{len(missing)} returned appends lost or changed, e.g. {missing[:5]}"
