"""``edge outbox``: what is waiting in the device's outbox (read-only; safe while the daemon runs).

edge outbox --data-dir /var/lib/edgewise stats
edge outbox --config device.toml peek -n 5
edge outbox --config device.toml dead-letters --json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edge.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "outbox",
        help="inspect the sync outbox: depth, seqs, unacked and dead-letter events",
        description="Reads the outbox file read-only; works while the daemon runs.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="the device's data dir (holds outbox.db)")
    where.add_argument("--config", type=Path, help="a device config: its data_dir and [sync]")
    p.add_argument("what", choices=["stats", "peek", "dead-letters"])
    p.add_argument("-n", type=int, default=10, help="rows to show (peek, dead-letters)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(handler=run)


def locate(args: argparse.Namespace) -> tuple[Path, Path]:
    """The outbox file and its state file, from --data-dir or --config."""
    if args.config is not None:
        from edge.config import load_config

        cfg = load_config(args.config)
        data_dir = cfg.data_dir
        rel = cfg.sync.outbox.path if cfg.sync is not None else Path("outbox.db")
    elif args.data_dir is not None:
        data_dir, rel = args.data_dir.expanduser(), Path("outbox.db")
    else:
        raise ConfigError("edge outbox: give --data-dir DIR or --config device.toml")
    path = rel if rel.is_absolute() else data_dir / rel
    return path, data_dir / "state.json"


def run(args: argparse.Namespace) -> int:
    from cloud_sync.outbox.inspect import OutboxView

    path, state = locate(args)
    view = OutboxView(path, state)
    try:
        if args.what == "stats":
            st = view.stats().to_json()
            if args.json:
                print(json.dumps(st))
            else:
                for k, v in st.items():
                    print(f"{k:18} {v}")
            return 0
        rows = view.peek(args.n) if args.what == "peek" else view.dead_letters(args.n)
        if args.json:
            print(json.dumps(rows))
            return 0
        now = time.time()
        for r in rows:
            age = f"{now - float(r['created']):.1f}s ago"
            if args.what == "peek":
                state_ = "delivered, unacked" if r["delivered"] is not None else "queued"
                print(f"seq {r['seq']}  {age}  {state_}  attempts {r['attempts']}")
            else:
                print(f"#{r['id']}  {age}  {r['detail']}")
            print(f"  {r['payload']}")
        if not rows:
            print("(none)")
        return 0
    finally:
        view.close()
