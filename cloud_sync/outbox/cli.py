"""``edge outbox``'s implementation (the parser is in ``edge.cli.outbox_cmd``, which loads
this module by name: edge never imports cloud_sync)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.inspect import OutboxView, SnapshotView
from edge.config import OutboxConfig, load_config
from edge.errors import ConfigError


def locate(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The outbox file, its state file and the snapshot store, from --data-dir or --config."""
    if args.config is not None:
        cfg = load_config(args.config)
        data_dir = cfg.data_dir
        box = cfg.sync.outbox if cfg.sync is not None else OutboxConfig()
    elif args.data_dir is not None:
        data_dir, box = args.data_dir.expanduser(), OutboxConfig()
    else:
        raise ConfigError("edge outbox: give --data-dir DIR or --config device.toml")
    path = box.path if box.path.is_absolute() else data_dir / box.path
    return path, data_dir / "state.json", data_dir / box.snapshot_path


def snapshot_stats(path: Path) -> dict[str, Any] | None:
    """The store's figures; None where there is none; ``{"error": ...}`` where it cannot be
    read (the events' figures are still shown: a damaged picture store costs no event)."""
    try:
        view = SnapshotView(path)
    except OutboxError as exc:
        return None if not path.exists() else {"path": str(path), "error": str(exc)}
    try:
        return view.stats()
    except OutboxError as exc:
        return {"path": str(path), "error": str(exc)}
    finally:
        view.close()


def snapshots(path: Path, args: argparse.Namespace) -> int:
    view = SnapshotView(path)
    try:
        rows = view.peek(args.n)
    finally:
        view.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    now = time.time()
    for r in rows:
        print(f"#{r['id']}  {now - float(r['created']):.1f}s ago  {r['kind']:10} "
              f"event {r['event_id']}  {r['bytes']} bytes")  # fmt: skip
    if not rows:
        print("(none)")
    return 0


def run(args: argparse.Namespace) -> int:
    path, state, snaps = locate(args)
    if args.what == "snapshots":
        return snapshots(snaps, args)
    view = OutboxView(path, state)
    try:
        if args.what == "stats":
            st = view.stats().to_json()
            sst = snapshot_stats(snaps)
            if args.json:
                print(json.dumps({**st, "snapshots": sst}))
            else:
                for k, v in st.items():
                    print(f"{k:18} {v}")
                for k, v in (sst or {"queued": "(no snapshot store)"}).items():
                    print(f"{'snapshots.' + k:18} {v}")
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
