"""The routing store over an `AsyncSession`: the repositories, for any dialect SQLAlchemy speaks."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxEvent
from db.repositories.interactions import InteractionCRUD
from db.repositories.leads import LeadCRUD
from db.repositories.operators import OperatorCRUD
from db.repositories.outbox import OutboxCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from routing.facts import InteractionFacts, OperatorState, SourceRules, StoredEvent, WaitingCursor
from routing.identity import KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from schemas.contacts import Contact
from schemas.events import EventType


class OrmRoutingStore:
    """Statements of the caller's session and transaction; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.interactions = InteractionCRUD(session)
        self.outbox = OutboxCRUD(session)
        self.settings = SourceOperatorSettingCRUD(session)
        self.operators = OperatorCRUD(session)
        self.leads = LeadCRUD(session)

    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        return await self.settings.sources_served_by(operator_ids)

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        return await self.settings.source_rules(source_ids)

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        return await self.interactions.last_operators(lead_uuids)

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        return await self.operators.lock_states(operator_ids)

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        await self.operators.add_to_loads(deltas)

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        return await self.interactions.ids_by_message_id(message_ids)

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        return await self.interactions.facts(interaction_ids, lock=lock)

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        await self.interactions.set_sequences(last)

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        return await self.interactions.next_waiting(source_ids, after, limit)

    async def leads_of(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        return await self.leads.owners_and_leads(contacts, lock=lock)

    async def insert_leads(self, rows: Sequence[NewLead]) -> None:
        await self.leads.insert_many(rows)

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        await self.leads.insert_contacts(rows)

    async def show_contacts(self, shown: Mapping[str, LeadContacts]) -> None:
        await self.leads.show(shown)

    async def merge_leads(self, merges: Sequence[LeadMerge]) -> None:
        await self.leads.merge(merges)

    async def advance_lead_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        return await self.leads.advance_sequences(counts)

    async def insert_interactions(self, rows: Sequence[NewInteraction]) -> list[int]:
        return await self.interactions.insert_many(rows)

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        return await self.interactions.overdue_waiting(now, limit)

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None:
        await self.interactions.set_overdue(interaction_ids, now)

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        await self.interactions.set_closed(interaction_ids, now)

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        await self.interactions.set_assigned(dict(assignments), now)

    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        await self.interactions.set_offered(offers, now)

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        return await self.interactions.due_offers(now, limit)

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        return await self.interactions.offer_deadlines(interaction_ids)

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        await self.interactions.withdraw_offers(expired, now)

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        return await self.interactions.expired_operators(interaction_ids)

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        return _stored(await self.outbox.first_events(interaction_ids))

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, StoredEvent]:
        return _stored(await self.outbox.events_of_type(interaction_ids, event_type))

    async def add_events(self, rows: Sequence[OutboxRow]) -> None:
        await self.outbox.add_many(rows)

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        await self.outbox.record_published(event_ids, now)


def _stored(events: dict[int, OutboxEvent]) -> dict[int, StoredEvent]:
    return {
        i: StoredEvent(e.interaction_id, e.event_id, e.routing_key, e.body)
        for i, e in events.items()
    }
