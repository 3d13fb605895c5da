"""The device's sequence high-water mark and boot epoch, kept OUTSIDE the outbox.

``<data dir>/state.json`` (written atomically: temp file, fsync, rename, fsync of the
directory) holds::

    {"v": 1, "device_id": "cam1", "epoch": 7, "seq_reserved": 120000,
     "outbox_id": "…", "clean": false, "next_seq": 118230}

- ``epoch`` is +1 on every open (a boot counter that survives a lost outbox).
- ``seq_reserved``: every seq below it may have been used. The outbox reserves seqs
  in blocks of ``BLOCK`` and rewrites this file only when a block runs out, so an
  append never waits on a second fsync (one write per 10,000 events).
- ``outbox_id`` names the outbox file this state belongs to (a random id stored in the
  outbox's ``meta`` table): a replaced or emptied outbox has none or another one.
- ``clean`` / ``next_seq``: written by a clean close, so the next open can tell an
  intact outbox (same id, same next_seq) from one that lost its last commits.

When the outbox is found lost or damaged the next seq is ``seq_reserved``: seqs are
never reused, at the price of a gap that the hub labels "lost at the device"
(StatusV1 ``outbox_reset``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cloud_sync.outbox.errors import OutboxError
from edge.atomic import write_atomic

log = logging.getLogger(__name__)

BLOCK = 10_000
"""Seqs reserved per write of the state file."""


def default_state_path(outbox: Path) -> Path:
    """Where the state of an outbox lives when its owner does not say: beside it, named
    after it (two outboxes in one directory must not share one high-water mark). The
    daemon's sink passes ``<data dir>/state.json``."""
    return outbox.with_name(outbox.name + ".state.json")


@dataclass(slots=True)
class SeqState:
    device_id: str = ""
    epoch: int = 0
    seq_reserved: int = 0
    outbox_id: str | None = None
    clean: bool = False
    next_seq: int = 0
    v: int = 1


def read_state(path: Path) -> SeqState | None:
    """The state file's content; None when there is none. A damaged file is moved aside
    (never deleted) and reported, and counts as none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutboxError(f"{path}: cannot read the seq state ({exc.strerror})") from None
    try:
        doc = json.loads(text)
        st = SeqState(
            device_id=str(doc.get("device_id", "")),
            epoch=int(doc["epoch"]),
            seq_reserved=int(doc["seq_reserved"]),
            outbox_id=doc.get("outbox_id"),
            clean=bool(doc.get("clean", False)),
            next_seq=int(doc.get("next_seq", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.replace(aside)
        log.error("%s: damaged seq state (%s); moved aside to %s", path, exc, aside.name)
        return None
    if st.epoch < 0 or st.seq_reserved < 0:
        return None
    return st


def write_state(path: Path, st: SeqState) -> None:
    """Atomically replace the state file (fsync of the file and of its directory)."""
    data = json.dumps(asdict(st), separators=(",", ":")).encode()
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise OutboxError(
            f"{path}: cannot record the seq high-water mark ({exc.strerror or exc})"
        ) from None
