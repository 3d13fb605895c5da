"""The readers' side of the store: devices, events (pages, the live feed), gaps,
telemetry, label counts and commands. A stored row that cannot be served is skipped
and counted (``Store.unreadable``), never the reason a whole page fails."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud_sync.hub.db import gaps as gapsmod
from cloud_sync.hub.db import render
from cloud_sync.hub.db.engine import EVENT_COLS
from cloud_sync.hub.db.render import iso, num
from cloud_sync.hub.db.snapshots import SnapshotRows
from cloud_sync.hub.errors import QueryError

MAX_PAGE = 1000
MAX_TRACK = 500
"""The most events ``track`` returns: a track's timeline, bounded however long it lived."""


@dataclass(frozen=True)
class EventQuery:
    device: str | None = None
    label: str | None = None
    stream: str | None = None
    zone: str | None = None
    """events whose ``zone`` (enter / exit) is it or whose ``zones`` list names it"""
    kind: str | None = None
    phase: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: int | None = None
    limit: int = 100
    order: str = "desc"


def parse_time(name: str, value: str) -> float:
    """Epoch seconds or RFC 3339; a bad value is a ``QueryError`` naming the parameter."""
    try:
        t = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(t):
            raise QueryError(f"{name}: {value!r} is not a finite number of seconds")
        return t
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}: {value!r} is neither epoch seconds nor RFC 3339") from None
    if dt.tzinfo is None:
        raise QueryError(f"{name}: {value!r} has no time zone; add Z or +00:00") from None
    return dt.timestamp()


def event_row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "n": r[0],
        "id": r[1],
        "device_id": r[2],
        "boot_id": r[3],
        "seq": r[4],
        "stream": r[5],
        "kind": r[6],
        "label": r[7],
        "score": num(r[8]),
        "phase": r[9],
        "started_at": iso(r[10]),
        "ts": iso(r[11]),
        "box": render.doc(r[12]),
        "track_id": r[13],
        "model": {"name": r[14], "version": r[15], "sha256": r[16]},
        "latency_ms": num(r[17]),
        "received_at": iso(r[18]),
        "zones": render.doc(r[19]),
        "zone": r[20],
        "line": r[21],
        "direction": r[22],
        "snapshots": render.doc(r[23]),
    }


def telemetry_row(r: Sequence[Any], keys: Sequence[str]) -> dict[str, Any]:
    def section(name: str) -> dict[str, Any]:
        v = doc.get(name) if isinstance(doc, dict) else None
        return v if isinstance(v, dict) else {}

    doc = render.doc(r[8])
    streams, detectors = section("streams"), section("detectors")
    return {
        "ts": iso(r[0]),
        **{k: num(v) for k, v in zip(keys, r[1:7], strict=True)},
        "boot_id": r[7],
        "streams": {
            name: {"kind": s.get("kind"), "fps": num(s.get("fps_processed"))}
            for name, s in streams.items()
            if isinstance(s, dict)
        },
        "detectors": {
            name: {"inference_ms": num(d.get("inference_ms")), "calls": d.get("calls")}
            for name, d in detectors.items()
            if isinstance(d, dict)
        },
    }


class Reads(SnapshotRows):
    """Reads: pages of rows, each row rendered or skipped (``render.rows``)."""

    def count_events(self, device: str | None = None) -> int:
        if device is None:
            return int(self._rows("SELECT count(*) FROM events")[0][0])
        return int(self._rows("SELECT count(*) FROM events WHERE device_id = ?", (device,))[0][0])

    def devices(self) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT d.device_id, d.first_seen, d.last_seen, d.state, d.state_at, d.boot_id,"
            " d.version, d.last_telemetry, d.last_event_at,"
            " (SELECT count(*) FROM events e WHERE e.device_id = d.device_id)"
            " FROM devices d ORDER BY d.device_id"
        )
        skip = self._skipper("devices")

        def one(r: Sequence[Any]) -> dict[str, Any]:
            try:
                tel = render.doc(r[7])
            except render.UnreadableError:  # the device stays listed; only its last telemetry goes
                skip()
                tel = None
            return {
                "device_id": r[0],
                "first_seen": iso(r[1]),
                "last_seen": iso(r[2]),
                "state": r[3],
                "state_at": iso(r[4]),
                "boot_id": r[5],
                "version": r[6],
                "telemetry": tel,
                "last_event_at": iso(r[8]),
                "events": int(r[9]),
            }

        return render.rows(rows, one, skip)

    def device(self, device_id: str) -> dict[str, Any] | None:
        found = [d for d in self.devices() if d["device_id"] == device_id]
        if not found:
            return None
        d = found[0]
        d["boots"] = render.rows(
            self._rows(
                "SELECT boot_id, first_seq, last_seq, first_seen, last_seen FROM boots"
                " WHERE device_id = ? ORDER BY first_seen",
                (device_id,),
            ),
            lambda r: {"boot_id": r[0], "first_seq": r[1], "last_seq": r[2],
                       "first_seen": iso(r[3]), "last_seen": iso(r[4])},
            self._skipper("boots"),
        )  # fmt: skip
        return d

    def events(self, q: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
        """A page of events in insertion order and the cursor of the next page (None: last)."""
        if not 1 <= q.limit <= MAX_PAGE:
            raise QueryError(f"limit: {q.limit} is outside 1..{MAX_PAGE}")
        if q.order not in ("asc", "desc"):
            raise QueryError(f"order: {q.order!r} must be asc or desc")
        where: list[str] = []
        params: list[Any] = []
        filters = (
            ("device_id", q.device),
            ("label", q.label),
            ("stream", q.stream),
            ("kind", q.kind),
            ("phase", q.phase),
        )
        for col, val in filters:
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if q.zone is not None:
            # zones is stored as JSON text (["a", "b"]): match the quoted name, with LIKE's
            # wildcards escaped; names are checked (NAME_RE) so they hold no quote
            where.append("(zone = ? OR zones LIKE ? ESCAPE '!')")
            quoted = '"' + q.zone.replace("!", "!!").replace("%", "!%").replace("_", "!_") + '"'
            params += [q.zone, f"%{quoted}%"]
        if q.since is not None:
            where.append("ts >= ?")
            params.append(q.since)
        if q.until is not None:
            where.append("ts < ?")
            params.append(q.until)
        if q.cursor is not None:
            where.append("n < ?" if q.order == "desc" else "n > ?")
            params.append(q.cursor)
        sql = f"SELECT {EVENT_COLS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY n {q.order.upper()} LIMIT ?"
        rows = self._rows(sql, (*params, q.limit + 1))
        page = render.rows(rows[: q.limit], event_row, self._skipper("events"))
        self.mark_stored(page)
        # the cursor is the last row's number, readable or not, so paging moves past it
        nxt = int(rows[q.limit - 1][0]) if len(rows) > q.limit else None
        return page, nxt

    def event(self, event_id: str) -> dict[str, Any] | None:
        """One event by its id; None if unknown (or its stored row cannot be served)."""
        rows = self._rows(f"SELECT {EVENT_COLS} FROM events WHERE id = ?", (event_id,))
        page = render.rows(rows, event_row, self._skipper("events"))
        self.mark_stored(page)
        return page[0] if page else None

    def track(self, event_id: str, limit: int = MAX_TRACK) -> list[dict[str, Any]] | None:
        """The timeline of ``event_id``'s track: every event of the same device, boot,
        stream and track id, in seq order, at most ``limit``. An event without a track
        (audio) is its own timeline. None if the event is unknown."""
        ev = self.event(event_id)
        if ev is None:
            return None
        if ev["track_id"] is None:
            return [ev]
        rows = self._rows(
            f"SELECT {EVENT_COLS} FROM events WHERE device_id = ? AND boot_id = ?"
            " AND stream = ? AND track_id = ? ORDER BY seq LIMIT ?",
            (ev["device_id"], ev["boot_id"], ev["stream"], ev["track_id"], limit),
        )
        page = render.rows(rows, event_row, self._skipper("events"))
        self.mark_stored(page)
        return page

    def events_after(self, n: int, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Events numbered above ``n`` and the highest number read: a page of unreadable
        rows still moves the reader on (the live feed must never stop on one)."""
        rows = self._rows(
            f"SELECT {EVENT_COLS} FROM events WHERE n > ? ORDER BY n LIMIT ?", (n, limit)
        )
        last = int(rows[-1][0]) if rows else n
        return render.rows(rows, event_row, self._skipper("events")), last

    def events_in(self, ns: Sequence[int]) -> list[dict[str, Any]]:
        if not ns:
            return []
        marks = ", ".join("?" * len(ns))
        rows = self._rows(f"SELECT {EVENT_COLS} FROM events WHERE n IN ({marks}) ORDER BY n", ns)
        return render.rows(rows, event_row, self._skipper("events"))

    def last_n(self) -> int:
        return int(self._rows("SELECT COALESCE(max(n), 0) FROM events")[0][0])

    def gaps(self, device: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Missing ``seq`` ranges per device, from seq 0 up to the highest stored seq.

        ``cause`` is ``outbox_reset`` for seqs below a boot whose status birth said its
        outbox was lost (lost at the device), else ``in_transit`` (see ``db.gaps``)."""
        where, params = ("WHERE device_id = ?", [device]) if device else ("", [])
        rows = self._rows(
            "SELECT device_id, COALESCE(prev, -1) + 1, seq - 1, prev_ts, ts FROM ("
            " SELECT device_id, seq, ts,"
            "  LAG(seq) OVER (PARTITION BY device_id ORDER BY seq) AS prev,"
            "  LAG(ts) OVER (PARTITION BY device_id ORDER BY seq) AS prev_ts"
            f" FROM events {where}) t WHERE seq > COALESCE(prev, -1) + 1"
            " ORDER BY device_id, seq LIMIT ?",
            (*params, limit),
        )
        births: dict[str, list[gapsmod.Birth]] = {}
        for b in self._rows(
            "SELECT device_id, boot_id, seq_start, outbox_reset FROM births"
            f" {where}"
            " ORDER BY device_id, seq_start",
            params,
        ):
            if b[2] is not None:
                births.setdefault(b[0], []).append(gapsmod.Birth(b[1], int(b[2]), bool(b[3])))
        out: list[dict[str, Any]] = []
        skip = self._skipper("events")
        for r in rows:
            try:
                after, before = iso(r[3]), iso(r[4])
            except render.UnreadableError:
                skip()
                after = before = None
            hole = gapsmod.Hole(int(r[1]), int(r[2]), r[3], r[4])
            for first, last, cause, boot in gapsmod.split(hole, births.get(r[0], [])):
                out.append(
                    {"device_id": r[0], "from_seq": first, "to_seq": last,
                     "missing": last - first + 1, "cause": cause, "boot_id": boot,
                     "after_ts": after, "before_ts": before}
                )  # fmt: skip
        return out[:limit]

    def telemetry(self, device: str, since: float, limit: int = 2000) -> list[dict[str, Any]]:
        """Telemetry rows, oldest first. ``fps`` is the stored sum over every stream (video
        frames and audio chunks together, kept for old readers); ``streams`` keeps them
        apart (name → kind, fps processed) and ``detectors`` has each one's inference ms,
        both read from the stored message."""
        rows = self._rows(
            "SELECT ts, fps, inference_ms, cpu_percent, rss_mb, outbox_depth, dropped,"
            " boot_id, doc FROM"
            " (SELECT * FROM telemetry WHERE device_id = ? AND ts >= ? ORDER BY ts DESC LIMIT ?)"
            " t ORDER BY ts",
            (device, since, limit),
        )
        keys = ("fps", "inference_ms", "cpu_percent", "rss_mb", "outbox_depth", "dropped")
        return render.rows(rows, lambda r: telemetry_row(r, keys), self._skipper("telemetry"))

    def label_counts(
        self, since: float, bucket_s: int, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Events per label per time bucket (bucket start in epoch seconds)."""
        b = self._bucket("ts / ?")
        where = "ts >= ?"
        params: list[Any] = [bucket_s, since]
        if device:
            where += " AND device_id = ?"
            params.append(device)
        rows = self._rows(
            f"SELECT label, {b} AS bucket, count(*) FROM events WHERE {where}"
            " GROUP BY label, bucket ORDER BY bucket, label",
            params,
        )
        return render.rows(
            rows,
            lambda r: {"label": r[0], "t": int(r[1]) * bucket_s, "count": int(r[2])},
            self._skipper("events"),
        )

    def commands(self, device: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT id, name, args, sent_at, replied_at, ok, reply FROM commands"
            " WHERE device_id = ? ORDER BY sent_at DESC LIMIT ?",
            (device, limit),
        )
        return render.rows(
            rows,
            lambda r: {"id": r[0], "name": r[1], "args": render.doc(r[2]) or {},
                       "sent_at": iso(r[3]), "replied_at": iso(r[4]),
                       "ok": None if r[5] is None else bool(r[5]), "reply": render.doc(r[6])},
            self._skipper("commands"),
        )  # fmt: skip
