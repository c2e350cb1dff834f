"""The statements a routing transaction needs, as one interface.

The router decides; a store only reads and writes. `db/routing_store/store.py` implements it
once over the statements of `db/statements/` (one SQLAlchemy Core definition each), run either
through SQLAlchemy's async sessions (PostgreSQL, and the API on any database) or as text
compiled once for plain `sqlite3` on the SQLite worker's own thread. The unit tests' double
is `tests/support/memory_store.py`.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from routing.facts import InteractionFacts, OperatorState, SourceRules, StoredEvent, WaitingCursor
from routing.identity import KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from schemas.contacts import Contact
from schemas.events import EventType


class RoutingStore(Protocol):
    # -- operators and weights: read under lock ------------------------------------------------
    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]: ...

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        """Which of these sources exist, which are sticky, and their weights."""
        ...

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        """Each lead's most recent interaction's operator (None while that one waits)."""
        ...

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]: ...

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None: ...

    # -- interactions and leads ----------------------------------------------------------------
    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]: ...

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        """With `lock`, their rows are locked until commit (PostgreSQL `FOR UPDATE`; SQLite's
        single writer holds everything already)."""
        ...

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        """interaction_id -> the `sequence` of its latest event (`last_sequence`)."""
        ...

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        """Waiting interactions of these sources in drain order (highest priority first, oldest
        first within one), after `after`; on PostgreSQL locked against a racing close."""
        ...

    async def leads_of(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        """The lead of each stored contact among these, and those leads.

        With `lock`, the leads are locked until commit (in uuid order): the batch is about to
        merge them or change what they show. Without, a lead a concurrent transaction merges
        away can still be referred to; the insert that refers to it then fails (its foreign
        key, or the contacts' unique index) and the transaction is retried, reading the
        survivor."""
        ...

    async def insert_leads(self, rows: Sequence[NewLead]) -> None: ...

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        """A contact another transaction inserted first raises (unique per kind and value);
        the caller's retry then finds it."""
        ...

    async def show_contacts(self, shown: Mapping[str, LeadContacts]) -> None:
        """Set existing leads' shown e-mail, phone and handle."""
        ...

    async def merge_leads(self, merges: Sequence[LeadMerge]) -> None:
        """Move the merged leads' contacts and interactions to the survivor, then delete them."""
        ...

    async def advance_lead_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Add `counts[uuid]` to each lead's `last_sequence` (its `lead.merged` events'
        numbers) and return the new values; the leads are locked already (a merge)."""
        ...

    async def insert_interactions(self, rows: Sequence[NewInteraction]) -> list[int]:
        """Insert the rows; returns their new ids in row order."""
        ...

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        """Waiting interactions past their source's `max_wait_s` and not yet marked overdue,
        oldest first; on PostgreSQL locked (`SKIP LOCKED`: another worker is marking them)."""
        ...

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None: ...

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None: ...

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        """interaction_id -> operator_id; an open offer's deadline is cleared (accepted)."""
        ...

    # -- offers --------------------------------------------------------------------------------
    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        """interaction_id -> the operator it is offered to, until when."""
        ...

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        """Offered interactions whose deadline has passed, earliest first; not locked (the
        router locks their operators, then reads them again)."""
        ...

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        """The deadline of each of these that is offered now."""
        ...

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        """interaction_id -> operator_id: the offer expired; the interaction waits again and
        is remembered as never to be offered to that operator."""
        ...

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        """Per interaction, the operators whose offer of it expired."""
        ...

    # -- outbox --------------------------------------------------------------------------------
    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]: ...

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, StoredEvent]:
        """Per interaction, its first event of this type (what a repeated close or accept
        gets again)."""
        ...

    async def add_events(self, rows: Sequence[OutboxRow]) -> None: ...

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        """The broker confirmed these events: set `published_at` where it is not set yet."""
        ...
