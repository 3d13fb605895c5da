"""Minimum-cost linear assignment with a gate: the tracker's (and the MOT tests') matcher.

``assign(cost, max_cost)`` returns the (row, column) pairs of a minimum-cost matching
that uses only entries ``<= max_cost``, maximizing first the number of such pairs. It is
the Hungarian method (shortest augmenting paths with potentials, as in Jonker-Volgenant),
in numpy, run per connected component of the gated matrix: IoU matrices of tracks
against detections are sparse, so the components are mostly 1×1 and solved directly.

Why not scipy or lap: neither is a device dependency (scipy is ~40 MB, lap one more
native wheel per platform), and a tracker's matrices are at most tens of rows;
``tests/unit/test_assignment.py`` checks this against scipy's ``linear_sum_assignment``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def assign(cost: Floats, max_cost: float) -> list[tuple[int, int]]:
    """Pairs (row, col) of a min-cost matching among entries ``<= max_cost``."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return []
    if n == 1 and m == 1:  # one track, one box (one face in view): what the rest would find
        return [(0, 0)] if cost[0, 0] <= max_cost else []
    valid = cost <= max_cost
    per_row, per_col = valid.sum(axis=1), valid.sum(axis=0)
    # the common case: a row and a column that have only each other
    lone = (valid & (per_row[:, None] == 1) & (per_col[None, :] == 1)).nonzero()
    pairs = [(int(r), int(c)) for r, c in zip(*lone, strict=True)]
    if len(pairs) < min(int((per_row > 0).sum()), int((per_col > 0).sum())):
        rest = valid.copy()
        rest[lone[0], :] = False
        pairs += _solve(cost, rest)
    return sorted(pairs)


def _solve(cost: Floats, valid: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Min-cost matching among the ``valid`` entries, per connected component."""
    pairs: list[tuple[int, int]] = []
    for rows, cols in _components(valid):
        if len(rows) == 1 and len(cols) == 1:
            pairs.append((rows[0], cols[0]))
            continue
        sub = cost[np.ix_(rows, cols)]
        # an entry past the gate costs more than any full matching of gated ones, so the
        # solver first maximizes the number of gated pairs; those pairs are dropped after
        big = float(np.abs(sub[valid[np.ix_(rows, cols)]]).sum()) + 1.0
        sub = np.where(valid[np.ix_(rows, cols)], sub, big)
        for r, c in _hungarian(sub):
            if valid[rows[r], cols[c]]:
                pairs.append((rows[r], cols[c]))
    return pairs


def _components(valid: npt.NDArray[np.bool_]) -> list[tuple[list[int], list[int]]]:
    """Connected components (rows, cols) of the bipartite graph of ``valid`` entries."""
    n, _ = valid.shape
    seen_r = np.zeros(n, bool)
    seen_c = np.zeros(valid.shape[1], bool)
    out: list[tuple[list[int], list[int]]] = []
    for start in range(n):
        if seen_r[start] or not valid[start].any():
            continue
        rows, cols = [start], []
        seen_r[start] = True
        frontier = [start]
        while frontier:
            new_c = np.flatnonzero(valid[frontier].any(axis=0) & ~seen_c)
            seen_c[new_c] = True
            cols += new_c.tolist()
            new_r = np.flatnonzero(valid[:, new_c].any(axis=1) & ~seen_r)
            seen_r[new_r] = True
            rows += new_r.tolist()
            frontier = new_r.tolist()
        out.append((sorted(rows), sorted(cols)))
    return out


def _hungarian(cost: Floats) -> list[tuple[int, int]]:
    """Min-cost assignment of every row of the smaller side (dense, finite ``cost``)."""
    if cost.shape[0] > cost.shape[1]:
        return [(r, c) for c, r in _hungarian(cost.T)]
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j]: the row (1-based) on column j, 0 = none
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = int(way[j0])
            p[j0] = p[j1]
            j0 = j1
    return [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j]]
