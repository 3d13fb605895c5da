"""``edge outbox``'s implementation (the parser is in ``edge.cli.outbox_cmd``, which loads
this module by name: edge never imports cloud_sync)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cloud_sync.outbox.inspect import OutboxView
from edge.config import load_config
from edge.errors import ConfigError


def locate(args: argparse.Namespace) -> tuple[Path, Path]:
    """The outbox file and its state file, from --data-dir or --config."""
    if args.config is not None:
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
