"""``edge outbox``: what is waiting in the device's outbox (read-only; safe while the daemon runs).

edge outbox --data-dir /var/lib/edgewise stats
edge outbox --config device.toml peek -n 5
edge outbox --config device.toml dead-letters --json
edge outbox --data-dir /var/lib/edgewise snapshots    (the snapshots waiting to be sent)
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the implementation reads the outbox, which lives in cloud_sync: loaded by name, as the
# mqtt sink is (edge never imports cloud_sync; see the layer contracts in pyproject.toml)
IMPL = "cloud_sync.outbox.cli:run"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "outbox",
        help="inspect the sync outbox: depth, seqs, unacked and dead-letter events, snapshots",
        description="Reads the outbox and snapshot files read-only; works while the daemon runs.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="the device's data dir (holds outbox.db)")
    where.add_argument("--config", type=Path, help="a device config: its data_dir and [sync]")
    p.add_argument("what", choices=["stats", "peek", "dead-letters", "snapshots"])
    p.add_argument("-n", type=int, default=10, help="rows to show (peek, dead-letters, snapshots)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    module, attr = IMPL.split(":")
    impl: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), attr)
    return impl(args)
