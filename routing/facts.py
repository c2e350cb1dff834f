"""What a store reads back for the router, typed (the rows it writes are in `routing.rows`).

Everything here is immutable except `OperatorState` (the pool counts loads on it).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas.events import InteractionStatus


@dataclass(frozen=True, slots=True)
class InteractionFacts:
    """The columns an event is built from: the interaction's own, then its lead's shown
    contacts (joined in; the stores read them from `leads`), then the `sequence` of its latest
    event (the next one is +1)."""

    id: int
    lead_uuid: str
    source_id: int
    operator_id: int | None
    status: InteractionStatus
    priority: int
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    email: str | None
    phone: str | None
    handle: str | None
    last_sequence: int


@dataclass
class OperatorState:
    """What the routing decision needs of an operator, read under lock; mutable because the
    pool counts a transaction's assignments on it as it goes."""

    id: int
    active: bool
    load_limit: int
    current_load: int

    @property
    def has_capacity(self) -> bool:
        return self.active and self.current_load < self.load_limit


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the outbox holds it: what a repeated command gets sent again."""

    interaction_id: int
    event_id: str
    routing_key: str
    body: str


class SourceRules(NamedTuple):
    """What routing needs of the sources in play: which exist, which are sticky, the weights
    (source_id, operator_id, weight) of their operators, and the `accept_timeout_s` of those
    that offer before assigning."""

    known: set[int]
    sticky: set[int]
    weights: list[tuple[int, int, int]]
    accept_timeouts: dict[int, int]


def source_rules(
    rows: Iterable[Sequence[Any]],
) -> SourceRules:
    """`SourceRules` from the rows of sources LEFT JOIN their weights, each `(source_id,
    sticky, accept_timeout_s, operator_id, weight)`: the one read both stores make."""
    known: set[int] = set()
    sticky: set[int] = set()
    weights: list[tuple[int, int, int]] = []
    timeouts: dict[int, int] = {}
    for source_id, is_sticky, accept_timeout_s, operator_id, weight in rows:
        known.add(source_id)
        if is_sticky:
            sticky.add(source_id)
        if accept_timeout_s is not None:
            timeouts[source_id] = accept_timeout_s
        if operator_id is not None and weight is not None:
            weights.append((source_id, operator_id, weight))
    return SourceRules(known, sticky, weights, timeouts)


class WaitingCursor(NamedTuple):
    """Where a drain stopped: the last waiting interaction it read, in drain order."""

    priority: int
    id: int
