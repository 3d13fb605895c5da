"""Read-only views of the outbox and the snapshot store for operators (``edge outbox``).

Opens with ``mode=ro``: it never writes, so it works beside a running daemon (WAL
readers do not block the writer) and never "repairs" a damaged file; a file that
cannot be read gives one line naming it and the cause.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloud_sync.outbox.errors import OutboxError
from cloud_sync.outbox.state import default_state_path, read_state


@dataclass(frozen=True, slots=True)
class FileStats:
    path: str
    depth: int
    bytes: int
    oldest_age_s: float
    next_seq: int
    delivered_unacked: int
    dead_letters: int
    dropped_total: int  # as of the last commit
    rejected_total: int
    epoch: int | None
    seq_reserved: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class OutboxView:
    def __init__(self, path: Path, state_path: Path | None = None) -> None:
        self.path = path
        self.state_path = state_path or default_state_path(path)
        if not path.exists():
            raise OutboxError(f"{path}: no outbox here; check --data-dir or sync.outbox.path")
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            bad = self._db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(f"{path}: cannot read the outbox ({exc})") from None
        if not bad or bad[0] != "ok":
            raise OutboxError(
                f"{path}: the outbox is damaged ({bad[0] if bad else 'no answer'}); the daemon "
                "moves it aside and salvages its rows when it next starts"
            )

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot read the outbox ({exc})") from None

    def stats(self) -> FileStats:
        meta = dict(self._q("SELECT key, value FROM meta"))
        depth, nbytes, oldest = self._q(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), MIN(created) FROM events"
        )[0]
        delivered = self._q("SELECT COUNT(*) FROM events WHERE delivered IS NOT NULL")[0][0]
        dead = 0
        if self._has("dead_letters"):
            dead = self._q("SELECT COUNT(*) FROM dead_letters")[0][0]
        st = read_state(self.state_path)
        return FileStats(
            path=str(self.path),
            depth=int(depth),
            bytes=int(nbytes),
            oldest_age_s=round(max(0.0, time.time() - float(oldest)), 3) if oldest else 0.0,
            next_seq=int(meta.get("next_seq", 0)),
            delivered_unacked=int(delivered),
            dead_letters=int(dead),
            dropped_total=int(meta.get("dropped_total", 0)),
            rejected_total=int(meta.get("rejected_total", 0)),
            epoch=st.epoch if st else None,
            seq_reserved=st.seq_reserved if st else None,
        )

    def _has(self, table: str) -> bool:
        return bool(self._q("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)))

    def peek(self, n: int) -> list[dict[str, Any]]:
        rows = self._q(
            "SELECT seq, boot_id, created, delivered, attempts, payload FROM events "
            "ORDER BY seq LIMIT ?",
            (n,),
        )
        return [
            {"seq": s, "boot_id": b, "created": c, "delivered": d, "attempts": a, "payload": p}
            for s, b, c, d, a, p in rows
        ]

    def dead_letters(self, n: int) -> list[dict[str, Any]]:
        if not self._has("dead_letters"):
            return []
        rows = self._q(
            "SELECT id, created, reason, detail, payload FROM dead_letters "
            "ORDER BY id DESC LIMIT ?",
            (n,),
        )
        return [
            {"id": i, "created": c, "reason": r, "detail": d, "payload": p}
            for i, c, r, d, p in rows
        ]

    def close(self) -> None:
        self._db.close()


class SnapshotView:
    """The snapshot store (``cloud_sync.outbox.snapshots``), read-only like ``OutboxView``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise OutboxError(f"{path}: no snapshot store here (none taken yet)")
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            bad = self._db.execute("PRAGMA quick_check").fetchone()
            self._db.execute("SELECT COUNT(*) FROM snapshots").fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(
                f"{path}: cannot read the snapshot store ({exc}); the daemon moves a damaged "
                "one aside when it next starts"
            ) from None
        if not bad or bad[0] != "ok":
            raise OutboxError(f"{path}: the snapshot store is damaged ({bad[0] if bad else '?'})")

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot read the snapshot store ({exc})") from None

    def stats(self) -> dict[str, Any]:
        """Queued now, and the lifetime totals as of the last commit."""
        meta = dict(self._q("SELECT key, value FROM meta"))
        n, nbytes, oldest = self._q(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0), MIN(created) FROM snapshots"
        )[0]
        out: dict[str, Any] = {
            "path": str(self.path),
            "queued": int(n),
            "bytes": int(nbytes),
            "oldest_age_s": round(max(0.0, time.time() - float(oldest)), 3) if oldest else 0.0,
        }
        for k in ("dropped", "lost", "refused"):
            out[f"{k}_total"] = int(meta.get(f"{k}_total", 0))
        return out

    def peek(self, n: int) -> list[dict[str, Any]]:
        rows = self._q(
            "SELECT id, event_id, kind, created, LENGTH(message) FROM snapshots "
            "ORDER BY id LIMIT ?",
            (n,),
        )
        return [
            {"id": i, "event_id": e, "kind": k, "created": c, "bytes": b} for i, e, k, c, b in rows
        ]

    def close(self) -> None:
        self._db.close()
