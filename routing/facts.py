"""What the router reads from the store: interactions, operators and stored events, typed."""

from dataclasses import dataclass


@dataclass
class InteractionFacts:
    """The columns an event is built from, with the lead's e-mail joined in."""

    id: int
    lead_uuid: str
    email: str
    source_id: int
    operator_id: int | None
    status: str
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None


@dataclass
class OperatorState:
    """What the routing decision needs of an operator, read under lock."""

    id: int
    active: bool
    load_limit: int
    current_load: int

    @property
    def has_capacity(self) -> bool:
        return self.active and self.current_load < self.load_limit


@dataclass(frozen=True)
class StoredEvent:
    """An event as the outbox holds it: what a repeated command gets sent again."""

    interaction_id: int
    event_id: str
    routing_key: str
    body: str
