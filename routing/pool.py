"""The operators one routing transaction may assign to, with loads it keeps exact as it goes."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from routing.choose import Candidate
from routing.facts import OperatorState
from routing.store import RoutingStore


class OperatorPool:
    """Operator states read under lock plus the weights of the sources in play.

    Loads change in memory as the transaction assigns and frees; `flush` writes the deltas back.
    """

    def __init__(
        self,
        states: dict[int, OperatorState],
        weights: Iterable[tuple[int, int, int]],
        known_sources: set[int] | None = None,
        sticky_sources: set[int] | None = None,
        accept_timeouts: dict[int, int] | None = None,
    ):
        self.states = states
        self.known_sources = known_sources or set()
        self.sticky_sources = sticky_sources or set()
        # source_id -> accept_timeout_s, for the sources that offer before assigning
        self.accept_timeouts = accept_timeouts or {}
        self.weights: dict[int, list[Candidate]] = defaultdict(list)
        for source_id, operator_id, weight in weights:
            self.weights[source_id].append(Candidate(operator_id, weight))
        self.deltas: dict[int, int] = defaultdict(int)

    @classmethod
    async def lock(
        cls, store: RoutingStore, source_ids: Iterable[int], operator_ids: Iterable[int] = ()
    ) -> "OperatorPool":
        """Lock every operator that serves these sources or is named, in one ordered statement."""
        extra_ops = set(operator_ids)
        sources = set(source_ids) | await store.sources_served_by(extra_ops)
        rules = await store.source_rules(sources)
        states = await store.lock_states({w[1] for w in rules.weights} | extra_ops)
        return cls(states, rules.weights, rules.known, rules.sticky, rules.accept_timeouts)

    def candidates(self, source_id: int, excluded: set[int] | None = None) -> list[Candidate]:
        """Operators weighted for the source, active and under their limit (and not
        `excluded`: those whose offer of the interaction expired)."""
        return [
            c
            for c in self.weights.get(source_id, [])
            if c.operator_id in self.states
            and self.states[c.operator_id].has_capacity
            and (not excluded or c.operator_id not in excluded)
        ]

    def offer_deadline(self, source_id: int, now: datetime) -> datetime | None:
        """When an offer made `now` on this source expires; None: the source assigns at once."""
        timeout = self.accept_timeouts.get(source_id)
        return None if timeout is None else now + timedelta(seconds=timeout)

    def sources_with_capacity(self) -> set[int]:
        return {source_id for source_id in self.weights if self.candidates(source_id)}

    def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        wanted = set(operator_ids)
        return {
            s for s, cands in self.weights.items() if any(c.operator_id in wanted for c in cands)
        }

    def take(self, operator_id: int) -> None:
        self.states[operator_id].current_load += 1
        self.deltas[operator_id] += 1

    def release(self, operator_id: int) -> None:
        state = self.states.get(operator_id)
        if state is not None:
            state.current_load -= 1
        self.deltas[operator_id] -= 1

    async def flush(self, store: RoutingStore) -> None:
        await store.add_to_loads(self.deltas)
        self.deltas.clear()
