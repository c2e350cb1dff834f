"""The weighted draw and the candidate filter, driven by seeded RNGs."""

from collections import Counter
from random import Random

import pytest

from routing.choose import Candidate, select_operator
from routing.facts import OperatorState
from routing.pool import OperatorPool

# Chi-square critical values at p = 0.001 by degrees of freedom.
CHI2_CRITICAL_0_001 = {1: 10.83, 2: 13.82, 3: 16.27}


def chi_square(observed: Counter[int], weights: dict[int, int], draws: int) -> float:
    total = sum(weights.values())
    return sum(
        (observed[op] - draws * w / total) ** 2 / (draws * w / total) for op, w in weights.items()
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("weights", [{1: 50, 2: 30, 3: 20}, {7: 1, 9: 99}, {4: 70, 5: 30}])
def test_draws_follow_weights_chi_square(seed: int, weights: dict[int, int]) -> None:
    rng = Random(seed)
    candidates = [Candidate(op, w) for op, w in weights.items()]
    draws = 10_000
    observed = Counter(select_operator(candidates, rng) for _ in range(draws))
    assert set(observed) <= set(weights)
    assert chi_square(observed, weights, draws) < CHI2_CRITICAL_0_001[len(weights) - 1]


def test_a_skewed_rng_would_fail_the_chi_square() -> None:
    """The statistic is sharp enough to notice a draw that ignores the weights."""
    weights = {1: 50, 2: 30, 3: 20}
    uniform = Counter({1: 3334, 2: 3333, 3: 3333})
    assert chi_square(uniform, weights, 10_000) > CHI2_CRITICAL_0_001[2]


def test_same_seed_same_draws_whatever_the_candidate_order() -> None:
    a = [Candidate(1, 10), Candidate(2, 20), Candidate(3, 70)]
    first = [select_operator(a, Random(42)) for _ in range(1)]
    rng_a, rng_b = Random(42), Random(42)
    seq_a = [select_operator(a, rng_a) for _ in range(100)]
    seq_b = [select_operator(list(reversed(a)), rng_b) for _ in range(100)]
    assert seq_a == seq_b
    assert first[0] == seq_a[0]


def test_no_candidates_means_nobody() -> None:
    assert select_operator([], Random(0)) is None


def _pool(states: list[OperatorState], weights: list[tuple[int, int, int]]) -> OperatorPool:
    return OperatorPool({s.id: s for s in states}, weights)


def test_inactive_and_full_operators_are_not_candidates() -> None:
    pool = _pool(
        [
            OperatorState(1, active=True, load_limit=3, current_load=1),
            OperatorState(2, active=False, load_limit=3, current_load=0),
            OperatorState(3, active=True, load_limit=2, current_load=2),
            OperatorState(4, active=True, load_limit=0, current_load=0),
        ],
        [(10, 1, 50), (10, 2, 50), (10, 3, 50), (10, 4, 50)],
    )
    assert [c.operator_id for c in pool.candidates(10)] == [1]


def test_operators_without_a_weight_for_the_source_are_not_candidates() -> None:
    pool = _pool([OperatorState(1, True, 5, 0), OperatorState(2, True, 5, 0)], [(10, 1, 50)])
    assert [c.operator_id for c in pool.candidates(10)] == [1]
    assert pool.candidates(11) == []


def test_taking_slots_stops_at_the_limit_within_a_batch() -> None:
    pool = _pool([OperatorState(1, True, 2, 0)], [(10, 1, 50)])
    rng = Random(5)
    taken = []
    for _ in range(5):
        op = select_operator(pool.candidates(10), rng)
        if op is not None:
            pool.take(op)
        taken.append(op)
    assert taken == [1, 1, None, None, None]
    assert pool.deltas == {1: 2}
    pool.release(1)
    assert [c.operator_id for c in pool.candidates(10)] == [1]
