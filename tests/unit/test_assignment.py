"""``edge.assignment.assign`` against scipy's ``linear_sum_assignment`` (a dev dependency).

Ground truth: scipy on the same matrix with the gated entries priced out of reach, which
maximizes the number of gated pairs first, then minimizes their cost.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from edge.assignment import assign


def reference(cost: np.ndarray, gate: float) -> list[tuple[int, int]]:
    rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, 1e6))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= gate]


@pytest.mark.parametrize("seed", range(300))
def test_same_count_and_cost_as_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 13, 2)
    cost = rng.random((n, m))
    if seed % 3 == 0:  # sparse, like IoU matrices: most pairs do not overlap at all
        cost[rng.random((n, m)) < 0.7] = 1.0
    gate = float(rng.choice([0.3, 0.7, 0.99, 2.0]))
    mine, ref = assign(cost, gate), reference(cost, gate)
    assert len(mine) == len(ref)
    assert sum(cost[r, c] for r, c in mine) == pytest.approx(sum(cost[r, c] for r, c in ref))
    assert len({r for r, _ in mine}) == len({c for _, c in mine}) == len(mine)
    assert all(cost[r, c] <= gate for r, c in mine)


def test_global_not_greedy() -> None:
    # greedy would take (0, 0) at 0.1 and leave row 1 only column 0 → one pair;
    # the assignment takes (0, 1) and (1, 0): two pairs
    cost = np.array([[0.1, 0.2], [0.3, 0.9]])
    assert assign(cost, 0.5) == [(0, 1), (1, 0)]


def test_empty() -> None:
    assert assign(np.zeros((0, 3)), 1.0) == []
    assert assign(np.ones((2, 2)), 0.5) == []


def test_one_by_one_at_the_gate() -> None:
    # one track, one box (every frame of a single face): paired up to the gate, not past it
    assert assign(np.array([[0.7]]), 0.7) == [(0, 0)]
    assert assign(np.array([[np.nextafter(0.7, 1.0)]]), 0.7) == []
    assert assign(np.array([[np.nan]]), 0.7) == []
