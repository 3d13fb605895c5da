"""Check the delivery promise: every committed seq stored once, none reused, none invented.

Ground truth comes from the device side: ``next_seq`` (the outbox's high-water mark, so
seqs ``0..next_seq-1`` were all committed, across every boot) and what an independent
subscriber saw on the broker (seq -> event ids). The hub's stored events are compared
against both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted seqs collapsed into inclusive ``(first, last)`` runs."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


@dataclass
class Audit:
    committed: int  # seqs 0..committed-1 were committed on the device
    stored: int  # rows the hub holds for the device
    missing: list[int] = field(default_factory=list)  # committed, not at the hub
    duplicated: dict[int, int] = field(default_factory=dict)  # seq -> rows at the hub (> 1)
    invented: list[int] = field(default_factory=list)  # at the hub or broker, never committed
    reused: dict[int, set[str]] = field(default_factory=dict)  # seq -> several event ids
    # missing, though the test subscriber got them from the broker
    missing_seen_by_broker: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.invented or self.reused)

    def summary(self) -> str:
        def rs(seqs: Iterable[int]) -> str:
            rr = ranges(seqs)
            text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rr[:20])
            return text + (f" … ({len(rr)} runs)" if len(rr) > 20 else "")

        lines = [f"committed seqs 0..{self.committed - 1}, hub rows {self.stored}"]
        if self.missing:
            lines.append(f"missing at the hub: {len(self.missing)} [{rs(self.missing)}]")
            lines.append(
                f"  of which the test subscriber got from the broker: "
                f"{len(self.missing_seen_by_broker)} [{rs(self.missing_seen_by_broker)}]"
            )
        if self.duplicated:
            lines.append(f"stored more than once: {dict(list(self.duplicated.items())[:20])}")
        if self.invented:
            lines.append(f"seqs never committed: [{rs(self.invented)}]")
        if self.reused:
            lines.append(f"seqs with several event ids: {dict(list(self.reused.items())[:10])}")
        return "\n".join(lines)


def audit(
    next_seq: int, subscriber_ids: Mapping[int, set[str]], hub_events: list[dict[str, Any]]
) -> Audit:
    hub_count = Counter(int(e["seq"]) for e in hub_events)
    ids: dict[int, set[str]] = defaultdict(set)
    for seq, seen in subscriber_ids.items():
        ids[seq] |= seen
    for e in hub_events:
        ids[int(e["seq"])].add(str(e["id"]))
    committed = set(range(next_seq))
    missing = sorted(committed - set(hub_count))
    return Audit(
        committed=next_seq,
        stored=len(hub_events),
        missing=missing,
        duplicated={s: n for s, n in sorted(hub_count.items()) if n > 1},
        invented=sorted((set(hub_count) | set(subscriber_ids)) - committed),
        reused={s: v for s, v in sorted(ids.items()) if len(v) > 1},
        missing_seen_by_broker=[s for s in missing if subscriber_ids.get(s)],
    )
