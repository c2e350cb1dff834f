"""`RoutingStore` over the statements of `db/statements/`: each operation's parameters and
the shape of its answer, written once for every database.

A `StatementRunner` runs the statements: `SessionStatements` through SQLAlchemy's async
session (PostgreSQL, and the API on any database), `SqliteStatements` as compiled text on
the SQLite worker's own thread. Rows come back from either as sequences in the statement's
column order, with values as the column types read them.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from db.statements import interactions, leads, operators, outbox, sources
from db.statements.statement import Statement
from routing.facts import (
    InteractionFacts,
    OperatorState,
    SourceRules,
    StoredEvent,
    WaitingCursor,
    source_rules,
)
from routing.identity import KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from schemas.contacts import Contact, ContactKind
from schemas.events import EventType

KIND_OF = {kind.value: kind for kind in ContactKind}  # a dict lookup: ContactKind(v) is slower
KINDS = tuple(ContactKind)  # in the order of `leads.KIND_PARAMS`


class StatementRunner(Protocol):
    """Runs statements in the caller's transaction. Parameters are given in `params` order."""

    async def rows(
        self, statement: Statement, params: Sequence[Any]
    ) -> Sequence[Sequence[Any]]: ...

    async def execute(self, statement: Statement, params: Sequence[Any]) -> None: ...

    async def execute_many(self, statement: Statement, rows: Sequence[Sequence[Any]]) -> None:
        """Once per row of parameters (an INSERT's rows go in as few statements as fit)."""
        ...


def _listed(values: Iterable[Any]) -> list[Any]:
    return list(set(values))


class SqlRoutingStore:
    """The routing store of one transaction, whichever runs its statements."""

    def __init__(self, db: StatementRunner) -> None:
        self.db = db

    # -- operators and weights -----------------------------------------------------------------

    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        ids = _listed(operator_ids)
        if not ids:
            return set()
        return {row[0] for row in await self.db.rows(sources.sources_served_by, (ids,))}

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        ids = _listed(source_ids)
        return source_rules(await self.db.rows(sources.source_rules, (ids,)) if ids else [])

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        uuids = _listed(lead_uuids)
        if not uuids:
            return {}
        return {lead: op for lead, op in await self.db.rows(interactions.last_operators, (uuids,))}

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        ids = _listed(operator_ids)
        if not ids:
            return {}
        rows = await self.db.rows(operators.lock_states, (ids,))
        return {row[0]: OperatorState(*row) for row in rows}

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        changes = [(delta, op) for op, delta in deltas.items() if delta]
        await self.db.execute_many(operators.add_to_load, changes)

    # -- interactions and leads ----------------------------------------------------------------

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        wanted = _listed(message_ids)
        if not wanted:
            return {}
        rows = await self.db.rows(interactions.ids_by_message_id, (wanted,))
        return {str(m): i for m, i in rows}

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        ids = _listed(interaction_ids)
        if not ids:
            return {}
        statement = interactions.facts_locked if lock else interactions.facts
        return {row[0]: InteractionFacts(*row) for row in await self.db.rows(statement, (ids,))}

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        await self.db.execute_many(interactions.set_sequence, list(last.items()))

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        priority, after_id = after if after is not None else (interactions.ABOVE_ANY_PRIORITY, 0)
        params = (_listed(source_ids), priority, after_id, limit)
        return [
            InteractionFacts(*row) for row in await self.db.rows(interactions.next_waiting, params)
        ]

    async def leads_of(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        """On SQLite `lock` changes nothing: the transaction holds the write lock already."""
        by_kind: dict[ContactKind, set[str]] = {}
        for contact in contacts:
            by_kind.setdefault(contact.kind, set()).add(contact.value)
        if not by_kind:
            return {}, {}
        statement = leads.leads_of_locked if lock else leads.leads_of
        params = [list(by_kind.get(kind, ())) for kind in KINDS]
        owners: dict[Contact, str] = {}
        known: dict[str, KnownLead] = {}
        for kind, value, uuid, created_at, email, phone, handle in await self.db.rows(
            statement, params
        ):
            owners[Contact(KIND_OF[kind], value)] = uuid
            if uuid not in known:
                known[uuid] = KnownLead(uuid, created_at, LeadContacts(email, phone, handle))
        return owners, known

    async def insert_leads(self, rows: Sequence[NewLead]) -> None:
        await self.db.execute_many(leads.insert_leads, rows)

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        await self.db.execute_many(leads.insert_contacts, rows)

    async def show_contacts(self, shown: Mapping[str, LeadContacts]) -> None:
        rows = [(c.email, c.phone, c.handle, uuid) for uuid, c in shown.items()]
        await self.db.execute_many(leads.show_contacts, rows)

    async def merge_leads(self, merges: Sequence[LeadMerge]) -> None:
        moves = [(m.survivor, merged) for m in merges for merged in m.merged]
        if moves:
            await self.db.execute_many(leads.move_contacts, moves)
            await self.db.execute_many(leads.move_interactions, moves)
            await self.db.execute(leads.delete_leads, ([merged for _, merged in moves],))

    async def advance_lead_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        """In uuid order, as the merge locked them."""
        if not counts:
            return {}
        await self.db.execute_many(leads.advance_sequence, sorted(counts.items()))
        rows = await self.db.rows(leads.sequences, (list(counts),))
        return {uuid: last for uuid, last in rows}

    async def insert_interactions(self, rows: Sequence[NewInteraction]) -> list[int]:
        if not rows:
            return []
        steps = list(range(1, len(rows) + 1))
        ids = [row[0] for row in await self.db.rows(interactions.reserve_ids, (steps,))]
        values = [(i, *row) for i, row in zip(ids, rows, strict=True)]
        await self.db.execute_many(interactions.insert_interactions, values)
        return ids

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        rows = await self.db.rows(interactions.overdue_waiting, (now, limit))
        return [InteractionFacts(*row) for row in rows]

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None:
        ids = _listed(interaction_ids)
        if ids:
            await self.db.execute(interactions.set_overdue, (ids, now))

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        ids = _listed(interaction_ids)
        if ids:
            await self.db.execute(interactions.set_closed, (ids, now))

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        rows = [(i, op, now) for i, op in assignments.items()]
        await self.db.execute_many(interactions.set_assigned, rows)

    # -- offers --------------------------------------------------------------------------------

    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        rows = [(i, o.operator_id, now, o.expires_at) for i, o in offers.items()]
        await self.db.execute_many(interactions.set_offered, rows)

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        rows = await self.db.rows(interactions.due_offers, (now, limit))
        return [InteractionFacts(*row) for row in rows]

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        ids = _listed(interaction_ids)
        if not ids:
            return {}
        return {i: at for i, at in await self.db.rows(interactions.offer_deadlines, (ids,))}

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        if not expired:
            return
        await self.db.execute(interactions.withdraw_offers, (list(expired),))
        rows = [(i, op, now) for i, op in expired.items()]
        await self.db.execute_many(interactions.insert_expired_offers, rows)

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        ids = _listed(interaction_ids)
        found: dict[int, set[int]] = {}
        if ids:
            for interaction_id, operator_id in await self.db.rows(
                interactions.expired_operators, (ids,)
            ):
                found.setdefault(interaction_id, set()).add(operator_id)
        return found

    # -- outbox --------------------------------------------------------------------------------

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        ids = _listed(interaction_ids)
        if not ids:
            return {}
        return {
            row[0]: StoredEvent(*row) for row in await self.db.rows(outbox.first_events, (ids,))
        }

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, StoredEvent]:
        ids = _listed(interaction_ids)
        if not ids:
            return {}
        rows = await self.db.rows(outbox.first_events_of_type, (ids, EventType(event_type).value))
        return {row[0]: StoredEvent(*row) for row in rows}

    async def add_events(self, rows: Sequence[OutboxRow]) -> None:
        await self.db.execute_many(outbox.insert_events, rows)

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        ids = _listed(event_ids)
        if ids:
            await self.db.execute(outbox.record_published, (ids, now))
