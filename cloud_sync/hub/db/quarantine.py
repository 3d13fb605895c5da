"""The quarantine: what could not be stored, kept for an operator, one row per payload."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud_sync.hub.db import render
from cloud_sync.hub.db.engine import Engine
from cloud_sync.hub.db.render import iso
from cloud_sync.hub.errors import QueryError
from edge.compat import UTC
from edge.wire import is_device_id

QUARANTINE_PAYLOAD_MAX = 64 * 1024
"""Bytes of a quarantined payload that are kept (``payload_bytes`` is the full size)."""
QUARANTINE_PAGE_MAX = 200


def _clean(text: str, limit: int) -> str:
    """Text a TEXT column takes on both engines (PostgreSQL refuses NUL), bounded."""
    return text.replace("\x00", "\ufffd")[:limit]


@dataclass(frozen=True)
class QuarantineItem:
    """A message (or one event of a batch) that could not be stored."""

    reason: str  # a validate.RejectReason, or "store_failed"
    detail: str
    topic: str
    payload: bytes
    device_id: str | None = None


class Quarantine(Engine):
    """What the writer could not store, and the operator's view of it."""

    def quarantine(self, items: Sequence[QuarantineItem], now: float | None = None) -> None:
        """Keep what could not be stored, in one transaction; a payload seen again bumps
        its row's ``count`` and ``last_at``."""
        if not items:
            return
        t = now if now is not None else datetime.now(UTC).timestamp()
        rows = []
        for q in items:
            digest = hashlib.sha256(q.topic.encode(errors="replace") + b"\0" + q.payload)
            dev = q.device_id if q.device_id is not None and is_device_id(q.device_id) else None
            rows.append(
                (
                    digest.hexdigest(), _clean(q.reason, 64), _clean(q.detail, 500),
                    _clean(q.topic, 1024), dev, q.payload[:QUARANTINE_PAYLOAD_MAX],
                    len(q.payload), t, t, 1,
                )
            )  # fmt: skip
        with self._tx() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO quarantine (digest, reason, detail, topic, device_id, payload,"
                    " payload_bytes, first_at, last_at, count)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (digest) DO UPDATE SET count = quarantine.count + 1,"
                    " last_at = excluded.last_at"
                ),
                rows,
            )

    def quarantined(
        self, device: str | None = None, cursor: int | None = None, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; the next page's cursor (None: last page)."""
        if not 1 <= limit <= QUARANTINE_PAGE_MAX:
            raise QueryError(f"limit: {limit} is outside 1..{QUARANTINE_PAGE_MAX}")
        where: list[str] = []
        params: list[Any] = []
        if device is not None:
            where.append("device_id = ?")
            params.append(device)
        if cursor is not None:
            where.append("n < ?")
            params.append(cursor)
        sql = (
            "SELECT n, reason, detail, topic, device_id, payload, payload_bytes, first_at,"
            " last_at, count FROM quarantine"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        raw = self._rows(sql + " ORDER BY n DESC LIMIT ?", (*params, limit + 1))

        def one(r: Sequence[Any]) -> dict[str, Any]:
            payload = bytes(r[5])
            return {
                "n": r[0], "reason": r[1], "detail": r[2], "topic": r[3], "device_id": r[4],
                "payload": payload.decode("utf-8", errors="replace"),
                "payload_bytes": r[6], "truncated": r[6] > len(payload),
                "first_at": iso(r[7]), "last_at": iso(r[8]), "count": r[9],
            }  # fmt: skip

        page = render.rows(raw[:limit], one, self._skipper("quarantine"))
        nxt = int(raw[limit - 1][0]) if len(raw) > limit else None
        return page, nxt

    def quarantine_count(self) -> int:
        """Distinct quarantined payloads."""
        return int(self._rows("SELECT count(*) FROM quarantine")[0][0])
