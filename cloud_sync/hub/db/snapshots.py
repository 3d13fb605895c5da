"""The snapshot index: one row per stored (event, kind), its JPEG a file or a blob.

What the API and retention ask of it: the event a snapshot names (to check its device
and to find its track), insert-once by ``(event_id, kind)``, the snapshots of an event
or of its whole track, totals, and the oldest rows to delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloud_sync.hub.db.engine import Engine


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a snapshot needs to know about its event."""

    id: str
    device_id: str
    boot_id: str
    stream: str
    track_id: int | None
    phase: str


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    event_id: str
    kind: str
    device_id: str
    boot_id: str
    stream: str
    track_id: int | None
    bytes: int
    sha256: str
    width: int
    height: int
    ts: float
    created: float
    path: str | None


_COLS = (
    "event_id, kind, device_id, boot_id, stream, track_id, bytes, sha256, width, height, ts,"
    " created, path"
)


def _row(r: Sequence[Any]) -> SnapshotRow:
    return SnapshotRow(
        r[0], r[1], r[2], r[3], r[4], None if r[5] is None else int(r[5]), int(r[6]), r[7],
        int(r[8]), int(r[9]), float(r[10]), float(r[11]), r[12],
    )  # fmt: skip


class SnapshotRows(Engine):
    """Queries on the ``snapshots`` table (migration 5)."""

    def event_ref(self, event_id: str) -> EventRef | None:
        rows = self._rows(
            "SELECT id, device_id, boot_id, stream, track_id, phase FROM events WHERE id = ?",
            (event_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return EventRef(r[0], r[1], r[2], r[3], None if r[4] is None else int(r[4]), r[5])

    def snapshot_exists(self, event_id: str, kind: str) -> bool:
        sql = "SELECT 1 FROM snapshots WHERE event_id = ? AND kind = ?"
        return bool(self._rows(sql, (event_id, kind)))

    def snapshot_insert(self, row: SnapshotRow, jpeg: bytes | None) -> bool:
        """Insert once; False when ``(event_id, kind)`` was stored already (a resend)."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    f"INSERT INTO snapshots ({_COLS}, jpeg) VALUES"
                    f" ({', '.join('?' * 14)}) ON CONFLICT (event_id, kind) DO NOTHING"
                ),
                (
                    row.event_id, row.kind, row.device_id, row.boot_id, row.stream,
                    row.track_id, row.bytes, row.sha256, row.width, row.height, row.ts,
                    row.created, row.path, jpeg,
                ),
            )  # fmt: skip
            return max(cur.rowcount, 0) > 0

    def snapshots_of(self, ref: EventRef) -> list[SnapshotRow]:
        """The event's own snapshots, then (when it has a track) those of its track."""
        if ref.track_id is None:
            rows = self._rows(f"SELECT {_COLS} FROM snapshots WHERE event_id = ?", (ref.id,))
        else:
            rows = self._rows(
                f"SELECT {_COLS} FROM snapshots WHERE event_id = ? OR (device_id = ?"
                " AND boot_id = ? AND stream = ? AND track_id = ?)",
                (ref.id, ref.device_id, ref.boot_id, ref.stream, ref.track_id),
            )
        return [_row(r) for r in rows]

    def snapshot_blob(self, event_id: str, kind: str) -> bytes | None:
        rows = self._rows(
            "SELECT jpeg FROM snapshots WHERE event_id = ? AND kind = ?", (event_id, kind)
        )
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

    def snapshot_totals(self) -> tuple[int, int]:
        """How many snapshots are stored and their bytes."""
        r = self._rows("SELECT count(*), COALESCE(sum(bytes), 0) FROM snapshots")[0]
        return int(r[0]), int(r[1])

    def snapshots_oldest(self, limit: int) -> list[SnapshotRow]:
        return [
            _row(r)
            for r in self._rows(
                f"SELECT {_COLS} FROM snapshots ORDER BY created, event_id, kind LIMIT ?",
                (limit,),
            )
        ]

    def snapshots_before(self, created: float, limit: int) -> list[SnapshotRow]:
        return [
            _row(r)
            for r in self._rows(
                f"SELECT {_COLS} FROM snapshots WHERE created < ?"
                " ORDER BY created, event_id, kind LIMIT ?",
                (created, limit),
            )
        ]

    def snapshots_delete(self, keys: Sequence[tuple[str, str]]) -> int:
        if not keys:
            return 0
        with self._tx() as cur:
            cur.executemany(
                self._sql("DELETE FROM snapshots WHERE event_id = ? AND kind = ?"), keys
            )
        return len(keys)

    # -- snapshots that wait for their event (migration 6) ----------------------------

    def pending_put(
        self, event_id: str, kind: str, device_id: str, payload: bytes, received_at: float
    ) -> None:
        """Keep one waiting snapshot's message; a resend of one kept already changes nothing."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO snapshots_pending (event_id, kind, device_id, payload,"
                    " received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, kind) DO NOTHING"
                ),
                (event_id, kind, device_id, payload, received_at),
            )

    def pending_delete(self, event_id: str, kind: str) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql("DELETE FROM snapshots_pending WHERE event_id = ? AND kind = ?"),
                (event_id, kind),
            )

    def pending_all(self, limit: int) -> list[tuple[str, str, str, bytes, float]]:
        """The kept messages, oldest first: (event_id, kind, topic device, payload,
        received_at)."""
        rows = self._rows(
            "SELECT event_id, kind, device_id, payload, received_at FROM snapshots_pending"
            " ORDER BY received_at, event_id, kind LIMIT ?",
            (limit,),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), bytes(r[3]), float(r[4])) for r in rows]

    def snapshot_kinds(self, event_ids: Sequence[str]) -> set[tuple[str, str]]:
        """The ``(event_id, kind)`` pairs indexed for these events: a query per 500."""
        out: set[tuple[str, str]] = set()
        for i in range(0, len(event_ids), 500):
            part = list(event_ids[i : i + 500])
            marks = ", ".join("?" * len(part))
            sql = f"SELECT event_id, kind FROM snapshots WHERE event_id IN ({marks})"
            out |= {(str(r[0]), str(r[1])) for r in self._rows(sql, part)}
        return out

    def mark_stored(self, events: list[dict[str, Any]]) -> None:
        """Add ``snapshots_stored`` (the kinds the hub holds) to rendered events, in place:
        one query for the page."""
        if not events:
            return
        have: dict[str, list[str]] = {}
        for eid, kind in self.snapshot_kinds([e["id"] for e in events]):
            have.setdefault(eid, []).append(kind)
        order = ("start", "start_crop", "best", "best_crop")
        for e in events:
            e["snapshots_stored"] = sorted(have.get(e["id"], []), key=order.index)
