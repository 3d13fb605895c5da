"""The writer's side of the store: events, statuses, telemetry and replies in one
transaction; commands sent; retention."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud_sync.hub.db.engine import EVENT_COLS, Cursor, Engine
from cloud_sync.hub.validate import Reply
from cloud_sync.schema import EventBatchV1, StatusV1, TelemetryV1
from edge.compat import UTC


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    stored_ids: list[str] = field(default_factory=list)


class Writes(Engine):
    """Writes: each call one transaction."""

    def write(
        self,
        batches: Sequence[EventBatchV1],
        statuses: Sequence[StatusV1] = (),
        telemetry: Sequence[TelemetryV1] = (),
        replies: Sequence[Reply] = (),
        now: float | None = None,
    ) -> WriteResult:
        """Store everything in one transaction; events already stored are skipped."""
        t = now if now is not None else datetime.now(UTC).timestamp()
        res = WriteResult()
        rows: list[tuple[Any, ...]] = []
        seen: dict[str, float] = {}
        boots: dict[tuple[str, str], list[int]] = {}
        for b in batches:
            seen[b.device_id] = t
            for e in b.events:
                rows.append(
                    (
                        e.id, e.device_id, e.boot_id, e.seq, e.stream, e.kind, e.label, e.score,
                        e.phase, e.started_at.timestamp(), e.ts.timestamp(),
                        json.dumps(e.box) if e.box is not None else None, e.track_id,
                        e.model.name, e.model.version, e.model.sha256, e.latency_ms, t,
                        json.dumps(e.zones) if e.zones is not None else None, e.zone, e.line,
                        e.direction, json.dumps(e.snapshots) if e.snapshots is not None else None,
                    )
                )  # fmt: skip
                k = (e.device_id, e.boot_id)
                lo_hi = boots.setdefault(k, [e.seq, e.seq])
                lo_hi[0] = min(lo_hi[0], e.seq)
                lo_hi[1] = max(lo_hi[1], e.seq)
        for s in statuses:
            seen[s.device_id] = t
        for m in telemetry:
            seen[m.device_id] = t
        g = self.greatest
        with self._tx() as cur:
            if seen:
                cur.executemany(
                    self._sql(
                        "INSERT INTO devices (device_id, first_seen, last_seen) VALUES (?, ?, ?)"
                        f" ON CONFLICT (device_id) DO UPDATE SET"
                        f" last_seen = {g}(devices.last_seen, excluded.last_seen)"
                    ),
                    [(d, ts, ts) for d, ts in sorted(seen.items())],
                )
            if rows:
                cur.executemany(
                    self._sql(
                        f"INSERT INTO events ({EVENT_COLS.split(', ', 1)[1]}) VALUES"
                        f" ({', '.join('?' * 23)}) ON CONFLICT (id) DO NOTHING"
                    ),
                    rows,
                )
                res.stored = self._inserted(cur, len(rows))
                res.duplicates = len(rows) - res.stored
                cur.executemany(
                    self._sql(
                        "INSERT INTO boots VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
                        f" (device_id, boot_id) DO UPDATE SET"
                        f" first_seq = {self.least}(boots.first_seq, excluded.first_seq),"
                        f" last_seq = {g}(boots.last_seq, excluded.last_seq),"
                        " last_seen = excluded.last_seen"
                    ),
                    [(d, bid, lo, hi, t, t) for (d, bid), (lo, hi) in sorted(boots.items())],
                )
                cur.executemany(
                    self._sql("UPDATE devices SET last_event_at = ? WHERE device_id = ?"),
                    [(t, d) for d in sorted({b.device_id for b in batches})],
                )
            for s in statuses:
                cur.execute(
                    self._sql(
                        "UPDATE devices SET state = ?, state_at = ?,"
                        " boot_id = COALESCE(?, boot_id), version = COALESCE(?, version)"
                        " WHERE device_id = ?"
                    ),
                    (s.state, s.ts.timestamp() if s.ts else t, s.boot_id, s.version, s.device_id),
                )
                if s.boot_id is not None and (s.seq_start is not None or s.outbox_reset):
                    cur.execute(
                        self._sql(
                            "INSERT INTO births VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT"
                            " (device_id, boot_id) DO UPDATE SET epoch = excluded.epoch,"
                            " seq_start = excluded.seq_start,"
                            " outbox_reset = excluded.outbox_reset"
                        ),
                        (s.device_id, s.boot_id, s.epoch, s.seq_start, int(s.outbox_reset), t),
                    )
            for m in telemetry:
                doc = m.model_dump_json()
                fps = sum(s.fps_processed for s in m.streams.values()) if m.streams else None
                inf = (
                    sum(d.inference_ms for d in m.detectors.values()) / len(m.detectors)
                    if m.detectors
                    else None
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (device_id, ts) DO NOTHING"
                    ),
                    (
                        m.device_id, m.ts.timestamp(), m.boot_id, fps, inf, m.cpu_percent,
                        m.rss_mb, m.outbox.depth if m.outbox else None,
                        m.outbox.dropped if m.outbox else None, doc,
                    ),
                )  # fmt: skip
                cur.execute(
                    self._sql("UPDATE devices SET last_telemetry = ? WHERE device_id = ?"),
                    (doc, m.device_id),
                )
            for r in replies:
                cur.execute(
                    self._sql(
                        "UPDATE commands SET replied_at = ?, ok = ?, reply = ?"
                        " WHERE id = ? AND device_id = ?"
                    ),
                    (t, int(r.reply.ok), r.reply.model_dump_json(), r.reply.id, r.device_id),
                )
        return res

    def _inserted(self, cur: Cursor, attempted: int) -> int:
        return max(cur.rowcount, 0)

    def add_command(self, cmd_id: str, device_id: str, name: str, args: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO commands (id, device_id, name, args, sent_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                ),
                (cmd_id, device_id, name, json.dumps(args), datetime.now(UTC).timestamp()),
            )

    def prune(self, older_than: float) -> int:
        """Delete events and telemetry captured before ``older_than``; returns events deleted."""
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM events WHERE ts < ?"), (older_than,))
            n = max(cur.rowcount, 0)
            cur.execute(self._sql("DELETE FROM telemetry WHERE ts < ?"), (older_than,))
        return n
