"""Where stored snapshots live: files beside a SQLite database, blobs in PostgreSQL.

The index (``snapshots`` table: event, kind, device, track, bytes, sha256, created and
the path or the blob) is in the database either way, so the API and retention read one
place. A file's path is built from the event's UUID (parsed, then re-printed) and the
kind enum only, never from a payload string: ``<dir>/<uuid[:2]>/<uuid>.<kind>.jpg``.
A file is written to a temporary name, fsynced, renamed into place and its folder
fsynced, and only then indexed: a crash leaves at worst an unindexed file, never an
indexed half JPEG. Serving re-checks the sha256, so a file damaged on disk is a 404
(counted), never wrong bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloud_sync.hub.db import Store
from cloud_sync.hub.db.snapshots import EventRef, SnapshotRow
from cloud_sync.schema import SnapshotHeaderV1
from edge.wire import SNAPSHOT_KINDS

log = logging.getLogger("edge_hub.snapshots")

Put = Literal["stored", "duplicate"]

_TMP = re.compile(r"^\.(?P<name>[0-9a-f-]{36}\.[a-z_]+\.jpg)\.\d+\.[0-9a-f]{8}\.tmp$")
_FILE = re.compile(r"^(?P<id>[0-9a-f-]{36})\.(?P<kind>[a-z_]+)\.jpg$")
ORPHAN_GRACE_S = 600.0
"""A file younger than this is left alone by the orphan sweep: it may be a write in
progress (this worker's or another's on shared storage) between its rename and its index."""


def default_dir(db_url: str, override: Path | None) -> Path | None:
    """The folder for snapshot files: ``--snapshot-dir``, else ``<db file>.snapshots``
    beside a SQLite file; ``None`` (blobs in the database) for PostgreSQL and ``:memory:``."""
    if override is not None:
        return override
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///") :]
        if path and path != ":memory:":
            return Path(path + ".snapshots")
    return None


def relpath(event_id: str, kind: str) -> str:
    """``ab/<uuid>.<kind>.jpg``: from the parsed UUID and the kind enum only."""
    if kind not in SNAPSHOT_KINDS:
        raise ValueError(f"{kind!r} is not a snapshot kind")
    u = str(uuid.UUID(event_id))  # raises for anything that is not a UUID
    return f"{u[:2]}/{u}.{kind}.jpg"


@dataclass(frozen=True, slots=True)
class Served:
    row: SnapshotRow
    jpeg: bytes


class SnapshotStore:
    """Stores and reads snapshots; ``dir`` None keeps the JPEGs in the database."""

    def __init__(self, store: Store, dir: Path | None) -> None:
        self.store = store
        self.dir = dir
        self.damaged = 0
        """Indexed snapshots whose file was missing or did not match its sha256."""

    @property
    def where(self) -> str:
        return str(self.dir) if self.dir is not None else "the database"

    def put(self, header: SnapshotHeaderV1, jpeg: bytes, event: EventRef) -> Put:
        """Store once per ``(event_id, kind)``; a resend is ``duplicate`` and writes nothing.
        Raises ``OSError`` (disk) or the database's error; the caller counts it."""
        if self.store.snapshot_exists(header.event_id, header.kind):
            return "duplicate"
        rel = relpath(header.event_id, header.kind)
        row = SnapshotRow(
            header.event_id, header.kind, event.device_id, event.boot_id, event.stream,
            event.track_id, len(jpeg), hashlib.sha256(jpeg).hexdigest(), header.width,
            header.height, header.ts.timestamp(), time.time(),
            rel if self.dir is not None else None,
        )  # fmt: skip
        if self.dir is not None:
            self._write_file(self.dir / rel, jpeg)
        stored = self.store.snapshot_insert(row, None if self.dir is not None else jpeg)
        return "stored" if stored else "duplicate"

    def _write_file(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, row: SnapshotRow) -> bytes | None:
        """The JPEG of an indexed row, checked against its sha256; None when it is gone
        or damaged (counted in ``damaged`` and logged)."""
        data: bytes | None
        if row.path is not None and self.dir is not None:
            try:
                data = (self.dir / relpath(row.event_id, row.kind)).read_bytes()
            except OSError as e:
                data = None
                why = f"unreadable ({type(e).__name__})"
        else:
            data = self.store.snapshot_blob(row.event_id, row.kind)
            why = "blob missing"
        if data is not None and hashlib.sha256(data).hexdigest() != row.sha256:
            data, why = None, "does not match its sha256"
        if data is None:
            self.damaged += 1
            log.error("snapshot %s/%s in %s is %s", row.event_id, row.kind, self.where, why)
        return data

    def delete(self, rows: list[SnapshotRow]) -> int:
        """Unindex first, then remove the files: a crash in between leaves only files
        nothing points at, never an index entry for a file that is gone."""
        n = self.store.snapshots_delete([(r.event_id, r.kind) for r in rows])
        if self.dir is not None:
            for r in rows:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / relpath(r.event_id, r.kind)).unlink()
        return n

    def sweep_orphans(self, now: float | None = None, grace_s: float = ORPHAN_GRACE_S) -> int:
        """Delete the files a crash left that nothing will ever serve or delete: a
        temporary file (killed before the rename), a JPEG with no index row (killed after
        the rename but before the index, or after the unindex but before the unlink). Only
        names this module makes, only older than ``grace_s``; retention counts indexed
        bytes, so without this such files would fill the disk unseen. How many went."""
        if self.dir is None or not self.dir.is_dir():
            return 0
        t = time.time() if now is None else now
        gone = 0
        for sub in sorted(self.dir.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            temps: list[Path] = []
            jpegs: dict[Path, tuple[str, str]] = {}
            for f in sorted(sub.iterdir()):
                try:
                    st = f.lstat()
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode) or t - st.st_mtime < grace_s:
                    continue
                if _TMP.match(f.name):
                    temps.append(f)
                elif (m := _FILE.match(f.name)) is not None:
                    with contextlib.suppress(ValueError):  # not a name of ours: left alone
                        if relpath(m["id"], m["kind"]) == f"{sub.name}/{f.name}":
                            jpegs[f] = (m["id"], m["kind"])
            indexed = self.store.snapshot_kinds(sorted({k[0] for k in jpegs.values()}))
            for f in temps + [f for f, key in jpegs.items() if key not in indexed]:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
                gone += 1
        if gone:
            log.info("snapshot files: deleted %d that a crash left unindexed in %s", gone,
                     self.dir)  # fmt: skip
        return gone

    def sweep(
        self, max_age_s: float | None, max_bytes: int | None, now: float | None = None
    ) -> tuple[int, int]:
        """Retention: delete what is older than ``max_age_s``, then the oldest until the
        total is at most ``max_bytes``. Returns (deleted for age, deleted for size)."""
        t = time.time() if now is None else now
        by_age = by_size = 0
        if max_age_s is not None:
            while rows := self.store.snapshots_before(t - max_age_s, 500):
                by_age += self.delete(rows)
        if max_bytes is not None:
            _n, total = self.store.snapshot_totals()
            while total > max_bytes:
                rows = self.store.snapshots_oldest(200)
                if not rows:
                    break
                take: list[SnapshotRow] = []
                for r in rows:
                    if total <= max_bytes:
                        break
                    take.append(r)
                    total -= r.bytes
                by_size += self.delete(take)
        return by_age, by_size
