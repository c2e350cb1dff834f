"""`RoutingStore` in plain dicts: the reference implementation of what a store must do.

Single-threaded and without locks (there is nobody to lock against). `run` gives it the shape
of a transaction runner (`db.transactions.TransactionRunner`): a unit of work that raises
leaves nothing behind, as a rolled-back transaction would. The router's fast tests run on it;
the same cases run on SQLite and PostgreSQL (`tests/support/router_cases.py`), which is what
keeps this store honest.
"""

import copy
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from routing.facts import InteractionFacts, OperatorState, SourceRules, StoredEvent, WaitingCursor
from routing.identity import KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from routing.store import RoutingStore
from schemas.contacts import Contact, ContactKind
from schemas.events import EventType, InteractionStatus

T = TypeVar("T")


@dataclass
class StoredInteraction:
    """An `interactions` row as this store keeps it."""

    id: int
    row: NewInteraction
    lead_uuid: str  # moves when its lead is merged into another
    operator_id: int | None
    status: InteractionStatus
    is_active: bool
    assigned_at: datetime | None
    closed_at: datetime | None = None
    overdue_at: datetime | None = None
    offer_expires_at: datetime | None = None
    last_sequence: int = 1  # the `sequence` of its latest event


@dataclass
class StoredOutboxRow:
    """An `outbox_events` row as this store keeps it (its position is its id)."""

    row: OutboxRow
    published_at: datetime | None = None


class InMemoryRoutingStore:
    """Sources, operators, weights, leads, interactions and the outbox, each a dict or list."""

    def __init__(self) -> None:
        self.sources: set[int] = set()
        self.sticky: set[int] = set()
        self.max_wait_s: dict[int, int] = {}
        self.accept_timeout_s: dict[int, int] = {}
        self.operators: dict[int, OperatorState] = {}
        self.weights: dict[tuple[int, int], int] = {}  # (source_id, operator_id) -> weight
        self.leads: dict[str, KnownLead] = {}
        self.contacts: dict[Contact, str] = {}  # contact -> lead uuid (unique, as the table)
        self.interactions: dict[int, StoredInteraction] = {}
        self.by_message_id: dict[str, int] = {}
        self.outbox: list[StoredOutboxRow] = []
        self.expired_offers: list[tuple[int, int]] = []  # (interaction_id, operator_id)
        self.lead_sequences: dict[str, int] = {}  # uuid -> its latest `lead.merged` sequence

    # -- set-up, as the API would leave it -------------------------------------------------------

    def add_source(
        self,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> int:
        source_id = len(self.sources) + 1
        self.sources.add(source_id)
        if sticky:
            self.sticky.add(source_id)
        if max_wait_s is not None:
            self.max_wait_s[source_id] = max_wait_s
        if accept_timeout_s is not None:
            self.accept_timeout_s[source_id] = accept_timeout_s
        return source_id

    def add_operator(self, load_limit: int, active: bool = True) -> int:
        operator_id = len(self.operators) + 1
        self.operators[operator_id] = OperatorState(operator_id, active, load_limit, 0)
        return operator_id

    def set_weights(self, source_id: int, weights: Mapping[int, int]) -> None:
        """Replace the source's whole set of weights, as the API's PUT does."""
        self.weights = {k: w for k, w in self.weights.items() if k[0] != source_id}
        self.weights.update({(source_id, op): w for op, w in weights.items()})

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        """`work` as one transaction: if it raises, the store is as it was before."""
        saved = copy.deepcopy(vars(self))
        try:
            return await work(self)
        except BaseException:
            vars(self).update(saved)
            raise

    # -- operators and weights -----------------------------------------------------------------

    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        wanted = set(operator_ids)
        return {source for source, operator in self.weights if operator in wanted}

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        wanted = set(source_ids)
        weights = [(s, o, w) for (s, o), w in self.weights.items() if s in wanted]
        timeouts = {s: t for s, t in self.accept_timeout_s.items() if s in wanted}
        return SourceRules(wanted & self.sources, wanted & self.sticky, weights, timeouts)

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        wanted, last = set(lead_uuids), dict[str, int | None]()
        for _, stored in sorted(self.interactions.items()):
            if stored.lead_uuid in wanted:
                last[stored.lead_uuid] = stored.operator_id
        return last

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        """Copies: the pool counts on them and writes back only through `add_to_loads`."""
        found = (self.operators.get(i) for i in set(operator_ids))
        return {s.id: copy.copy(s) for s in found if s is not None}

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        for operator_id, delta in deltas.items():
            state = self.operators.get(operator_id)
            if state is not None:
                state.current_load += delta
                if state.current_load < 0:  # the CHECK constraint of the real tables
                    raise ValueError(f"operator {operator_id}'s load would go below zero")

    # -- interactions and leads ----------------------------------------------------------------

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        return {m: self.by_message_id[m] for m in set(message_ids) if m in self.by_message_id}

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        found = (self.interactions.get(i) for i in set(interaction_ids))
        return {i.id: self._facts(i) for i in found if i is not None}

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        for i, sequence in last.items():
            self.interactions[i].last_sequence = sequence

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        wanted = set(source_ids)

        def order(stored: StoredInteraction) -> tuple[int, int]:
            return (-stored.row.priority, stored.id)

        waiting = sorted(
            (
                stored
                for stored in self.interactions.values()
                if stored.status == InteractionStatus.WAITING
                and stored.row.source_id in wanted
                and (after is None or order(stored) > (-after.priority, after.id))
            ),
            key=order,
        )
        return [self._facts(stored) for stored in waiting[:limit]]

    async def leads_of(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        owners = {c: self.contacts[c] for c in set(contacts) if c in self.contacts}
        return owners, {u: self.leads[u] for u in set(owners.values())}

    async def insert_leads(self, rows: Sequence[NewLead]) -> None:
        for row in rows:
            shown = LeadContacts(row.email, row.phone, row.handle)
            self.leads[row.uuid] = KnownLead(row.uuid, row.created_at, shown)

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        for row in rows:
            contact = Contact(ContactKind(row.kind), row.value)
            if contact in self.contacts:  # the real table's UNIQUE constraint
                raise ValueError(f"contact {contact} belongs to a lead already")
            self.contacts[contact] = row.lead_uuid

    async def show_contacts(self, shown: Mapping[str, LeadContacts]) -> None:
        for uuid, contacts in shown.items():
            lead = self.leads[uuid]
            self.leads[uuid] = KnownLead(uuid, lead.created_at, contacts)

    async def merge_leads(self, merges: Sequence[LeadMerge]) -> None:
        for merge in merges:
            merged = set(merge.merged)
            for contact, owner in self.contacts.items():
                if owner in merged:
                    self.contacts[contact] = merge.survivor
            for stored in self.interactions.values():
                if stored.lead_uuid in merged:
                    stored.lead_uuid = merge.survivor
            for uuid in merged:
                del self.leads[uuid]
                self.lead_sequences.pop(uuid, None)

    async def advance_lead_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        for uuid, count in counts.items():
            self.lead_sequences[uuid] = self.lead_sequences.get(uuid, 0) + count
        return {uuid: self.lead_sequences[uuid] for uuid in counts}

    async def insert_interactions(self, rows: Sequence[NewInteraction]) -> list[int]:
        ids = []
        for row in rows:
            interaction_id = max(self.interactions, default=0) + 1
            if row.message_id is not None:
                if row.message_id in self.by_message_id:  # the real table's UNIQUE constraint
                    raise ValueError(f"message_id {row.message_id!r} is stored already")
                self.by_message_id[row.message_id] = interaction_id
            self.interactions[interaction_id] = StoredInteraction(
                interaction_id,
                row,
                row.lead_uuid,
                row.operator_id,
                row.status,
                row.is_active,
                row.assigned_at,
                offer_expires_at=row.offer_expires_at,
            )
            ids.append(interaction_id)
        return ids

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        late = [
            stored
            for _, stored in sorted(self.interactions.items())
            if stored.status == InteractionStatus.WAITING
            and stored.overdue_at is None
            and (wait := self.max_wait_s.get(stored.row.source_id)) is not None
            and stored.row.created_at < now - timedelta(seconds=wait)
        ]
        return [self._facts(stored) for stored in late[:limit]]

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None:
        for i in interaction_ids:
            stored = self.interactions[i]
            if stored.overdue_at is None:
                stored.overdue_at = now

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        for i in interaction_ids:
            stored = self.interactions[i]
            stored.status, stored.is_active, stored.closed_at = InteractionStatus.CLOSED, False, now
            stored.offer_expires_at = None

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        for i, operator_id in assignments.items():
            stored = self.interactions[i]
            stored.operator_id, stored.status = operator_id, InteractionStatus.ASSIGNED
            stored.assigned_at, stored.offer_expires_at = now, None

    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        for i, offer in offers.items():
            stored = self.interactions[i]
            stored.operator_id, stored.status = offer.operator_id, InteractionStatus.OFFERED
            stored.assigned_at, stored.offer_expires_at = now, offer.expires_at

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        due = sorted(
            (
                stored
                for stored in self.interactions.values()
                if stored.status == InteractionStatus.OFFERED
                and stored.offer_expires_at is not None
                and stored.offer_expires_at <= now
            ),
            key=lambda stored: (stored.offer_expires_at, stored.id),
        )
        return [self._facts(stored) for stored in due[:limit]]

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        found = (self.interactions.get(i) for i in set(interaction_ids))
        return {
            stored.id: stored.offer_expires_at
            for stored in found
            if stored is not None
            and stored.status == InteractionStatus.OFFERED
            and stored.offer_expires_at is not None
        }

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        for i, operator_id in expired.items():
            stored = self.interactions[i]
            stored.operator_id, stored.status = None, InteractionStatus.WAITING
            stored.assigned_at, stored.offer_expires_at = None, None
            self.expired_offers.append((i, operator_id))

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        wanted, found = set(interaction_ids), dict[int, set[int]]()
        for interaction_id, operator_id in self.expired_offers:
            if interaction_id in wanted:
                found.setdefault(interaction_id, set()).add(operator_id)
        return found

    def _facts(self, stored: StoredInteraction) -> InteractionFacts:
        row, shown = stored.row, self.leads[stored.lead_uuid].shown
        return InteractionFacts(
            stored.id,
            stored.lead_uuid,
            row.source_id,
            stored.operator_id,
            stored.status,
            row.priority,
            *(row.message_id, row.correlation_id, row.reply_to),  # the create's envelope
            *(shown.email, shown.phone, shown.handle),  # the lead's, joined
            stored.last_sequence,
        )

    # -- outbox --------------------------------------------------------------------------------

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        return self._first_events(interaction_ids, None)

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, StoredEvent]:
        return self._first_events(interaction_ids, event_type.value)

    def _first_events(
        self, interaction_ids: Iterable[int], routing_key: str | None
    ) -> dict[int, StoredEvent]:
        wanted, first = set(interaction_ids), dict[int, StoredEvent]()
        for stored in self.outbox:
            row = stored.row
            if row.interaction_id in wanted and routing_key in (None, row.routing_key):
                first.setdefault(
                    row.interaction_id,
                    StoredEvent(row.interaction_id, row.event_id, row.routing_key, row.body),
                )
        return first

    async def add_events(self, rows: Sequence[OutboxRow]) -> None:
        self.outbox.extend(StoredOutboxRow(row) for row in rows)

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        wanted = set(event_ids)
        for stored in self.outbox:
            if stored.row.event_id in wanted and stored.published_at is None:
                stored.published_at = now
