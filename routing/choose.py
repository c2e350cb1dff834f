"""The routing decision as a pure function: candidates and an RNG in, an operator id out."""

from collections.abc import Sequence
from dataclasses import dataclass
from random import Random


@dataclass(frozen=True)
class Candidate:
    operator_id: int
    weight: int


def select_operator(candidates: Sequence[Candidate], rng: Random) -> int | None:
    """Draw one operator with probability proportional to its weight; None when nobody is free.

    Candidates must already be filtered (active, under their load limit). Order is fixed by
    operator id so that a seeded RNG gives the same draw on every run.
    """
    if not candidates:
        return None
    ordered = sorted(candidates, key=lambda c: c.operator_id)
    total = sum(c.weight for c in ordered)
    point = rng.random() * total
    for candidate in ordered:
        point -= candidate.weight
        if point < 0:
            return candidate.operator_id
    return ordered[-1].operator_id
