"""The router: every change of who handles what happens here, inside the caller's transaction.

Order inside one batch: closes free capacity, accepts turn offers into assignments, the waiting
interactions take the freed capacity (highest priority, then oldest, first), then new
interactions take what is left. On a source with `accept_timeout_s` an operator is offered the
interaction first; an offer not accepted in time expires (`expire_offers`) and goes elsewhere.
The worker and the API both go through this class, so an HTTP close and an AMQP close are the
same code path.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain
from random import Random

from routing.choose import select_operator
from routing.commands import AcceptRequest, CloseRequest, CreateRequest, Envelope
from routing.events import build_event, build_merged_event
from routing.facts import InteractionFacts, StoredEvent, WaitingCursor
from routing.identity import Command, LeadMerge, LeadResolution, resolve_leads
from routing.outcomes import PendingEvent, RefusalClass, Refused, Routed, RoutingOutcome
from routing.pool import OperatorPool
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from routing.store import RoutingStore
from routing.uuids import UuidSource
from schemas.events import HOLDS_A_SLOT, AssignReason, EventType, InteractionStatus
from schemas.messages import AcceptInteraction, CloseInteraction

ASSIGNED, WAITING, CLOSED, OFFERED = (
    InteractionStatus.ASSIGNED,
    InteractionStatus.WAITING,
    InteractionStatus.CLOSED,
    InteractionStatus.OFFERED,
)
# The event that announces each status an interaction is given, and the status each event
# leaves behind (what a replayed event reports).
EVENT_OF = {
    ASSIGNED: EventType.ASSIGNED,
    WAITING: EventType.WAITING,
    OFFERED: EventType.OFFERED,
    CLOSED: EventType.CLOSED,
}
STATUS_AFTER = {event: status for status, event in EVENT_OF.items()} | {
    EventType.ACCEPTED: ASSIGNED,
    EventType.OFFER_EXPIRED: WAITING,
    EventType.OVERDUE: WAITING,
}

WEIGHTED, STICKY = AssignReason.WEIGHTED, AssignReason.STICKY
DRAIN, MANUAL = AssignReason.DRAIN, AssignReason.MANUAL
DRAIN_CHUNK = 500
OVERDUE_CHUNK = 500
OFFER_CHUNK = 500


class Router:
    """One unit of routing work in one transaction of `store`; the caller commits (or rolls
    back) after. The router decides, the store only reads and writes."""

    def __init__(self, store: RoutingStore, rng: Random, owner: str | None = None) -> None:
        self.store = store
        self.rng = rng
        self.owner = owner  # the worker process whose relay answers for the events (None: API)
        self.now = datetime.now(UTC)
        self.new_event_id = UuidSource()
        self.outcome = RoutingOutcome()
        self.pool = OperatorPool({}, [])
        self._outbox_rows: list[OutboxRow] = []
        # interaction_id -> the sequence of its latest event in this transaction; those not
        # yet written to the store are in `_unwritten_sequences`.
        self._sequences: dict[int, int] = {}
        self._unwritten_sequences: dict[int, int] = {}
        self._followers: list[tuple[CreateRequest | CloseRequest | AcceptRequest, int]] = []
        # operator_id -> the envelope of the traced close that freed it: a drain onto that
        # operator continues the close's trace (a drain an API change caused has none).
        self._freed_by: dict[int, Envelope] = {}

    async def route_batch(
        self,
        creates: Sequence[CreateRequest],
        closes: Sequence[CloseRequest],
        accepts: Sequence[AcceptRequest] = (),
    ) -> RoutingOutcome:
        creates = await self._replay_known_message_ids(creates)
        create_sources = {c.command.source_id for c in creates}
        self.pool = await self._lock_before_closing(create_sources, closes, accepts)
        creates = self._refuse_unknown_sources(creates)  # the pool knows which sources exist
        closing = await self._closable(closes)  # read after the locks: current, not stale
        freed_by = {
            f.operator_id
            for _, f in closing
            if f.operator_id is not None and f.status in HOLDS_A_SLOT
        }
        if freed_by - self.pool.states.keys():  # moved meanwhile (e.g. a manual assignment)
            self.pool = await OperatorPool.lock(
                self.store, create_sources, freed_by | self.pool.states.keys()
            )
        freed = await self._close(closing)
        await self._accept(accepts)
        await self._drain(self.pool.sources_served_by(freed))
        await self._assign_new(creates)
        await self._finish()
        return self.outcome

    async def _lock_before_closing(
        self,
        create_sources: set[int],
        closes: Sequence[CloseRequest],
        accepts: Sequence[AcceptRequest] = (),
    ) -> OperatorPool:
        """Lock every operator that could change the closing interactions, then let them be read.

        Facts read before the locks can be stale: a concurrent worker may drain a waiting
        interaction (or close an assigned one) in between, and closing on the stale facts would
        leave its operator's load one too high (or free it twice). Whoever changes an
        interaction holds a lock on its operator or, for a drain, on every operator of its
        source; so: lock those first, read the facts after (READ COMMITTED: a fresh snapshot).
        An accept locks the accepting operator too: an offer to it is then only its to change.
        """
        glimpse = await self.store.facts(
            chain(
                (c.command.interaction_id for c in closes),
                (a.command.interaction_id for a in accepts),
            )
        )
        holders = {
            f.operator_id
            for f in glimpse.values()
            if f.status in HOLDS_A_SLOT and f.operator_id is not None
        }
        accepting = {a.command.operator_id for a in accepts}
        waiting_in = {f.source_id for f in glimpse.values() if f.status == WAITING}
        return await OperatorPool.lock(self.store, create_sources | waiting_in, holders | accepting)

    async def drain(
        self, operator_ids: Iterable[int] = (), source_ids: Iterable[int] = ()
    ) -> RoutingOutcome:
        """Give waiting interactions to capacity that appeared outside a close (API changes)."""
        operator_ids, source_ids = set(operator_ids), set(source_ids)
        self.pool = await OperatorPool.lock(self.store, source_ids, operator_ids)
        await self._drain(source_ids | self.pool.sources_served_by(operator_ids))
        await self._finish()
        return self.outcome

    async def mark_overdue(self, now: datetime | None = None) -> RoutingOutcome:
        """One `interaction.overdue` per interaction that has waited past its source's
        `max_wait_s`: marked in the same transaction as its event, so whichever worker's
        timer finds it first sends it, and nobody sends it again."""
        self.now = now = now or self.now  # the moment of the sweep
        late = await self.store.overdue_waiting(now, OVERDUE_CHUNK)
        if late:
            await self.store.set_overdue([facts.id for facts in late], now)
            for facts in late:
                envelope = Envelope(None, facts.correlation_id, None)
                self._emit(facts, EventType.OVERDUE, envelope)
            await self._finish()
        return self.outcome

    async def expire_offers(self, now: datetime | None = None) -> RoutingOutcome:
        """Offers past their deadline: each expires exactly once (`interaction.offer_expired`),
        its operator's place is freed, and the interaction goes to another candidate (never
        one whose offer of it expired) or waits.

        The due offers are read without locks, then their operators and their sources'
        operators are locked (the order every routing transaction takes) and the offers read
        again: an accept or another worker's timer that got there first has changed them.
        """
        self.now = now = now or self.now  # the moment of the sweep, for new deadlines too
        due = await self.store.due_offers(now, OFFER_CHUNK)
        if not due:
            return self.outcome
        holders = {f.operator_id for f in due if f.operator_id is not None}
        self.pool = await OperatorPool.lock(self.store, {f.source_id for f in due}, holders)
        fresh = await self.store.facts(f.id for f in due)
        deadlines = await self.store.offer_deadlines(fresh)
        expired: dict[int, int] = {}
        for glimpsed in due:
            facts = fresh.get(glimpsed.id)
            deadline = deadlines.get(glimpsed.id)
            if (
                facts is None
                or facts.status != OFFERED
                or facts.operator_id is None
                or facts.operator_id not in self.pool.states
                or deadline is None
                or deadline > now
            ):
                continue  # accepted, closed or moved meanwhile: not this timer's to expire
            expired[facts.id] = facts.operator_id
            self.pool.release(facts.operator_id)
            envelope = Envelope(None, facts.correlation_id, None)
            self._emit(replace(facts, status=WAITING), EventType.OFFER_EXPIRED, envelope)
        if expired:
            await self.store.withdraw_offers(expired, now)
            sources = {fresh[i].source_id for i in expired}
            await self._drain(sources | self.pool.sources_served_by(expired.values()))
        await self._finish()
        return self.outcome

    async def accept(self, interaction_id: int, operator_id: int) -> RoutingOutcome:
        """Accept an offer (API): exactly what an `interaction.accept` message does."""
        command = AcceptInteraction(interaction_id=interaction_id, operator_id=operator_id)
        request = AcceptRequest(0, command)
        outcome = await self.route_batch([], [], [request])
        refusal = outcome.results.get(request.key)
        if isinstance(refusal, Refused):
            not_found = refusal.kind == RefusalClass.UNKNOWN_INTERACTION
            raise AssignmentRefused(refusal.reason, not_found=not_found)
        return outcome

    async def assign(self, interaction_id: int, operator_id: int) -> RoutingOutcome:
        """Manual assignment (API): the operator must be active and under its limit.

        Re-assigning moves the slot: the previous operator is freed and its sources drained.
        """
        facts = await self._facts_under_lock(interaction_id, operator_id)
        if facts.status == CLOSED:
            raise AssignmentRefused(f"interaction {interaction_id} is closed")
        previous = facts.operator_id if facts.status in HOLDS_A_SLOT else None
        if previous == operator_id and facts.status == ASSIGNED:
            return self.outcome
        if previous != operator_id:  # assigning an offer to its own operator moves no slot
            self._check_can_take(operator_id)
            self.pool.take(operator_id)
            if previous is not None:
                self.pool.release(previous)
        facts = replace(facts, operator_id=operator_id, status=ASSIGNED)
        await self.store.set_assigned({interaction_id: operator_id}, self.now)
        envelope = Envelope(None, facts.correlation_id, facts.reply_to)
        self._emit(facts, EventType.ASSIGNED, envelope, MANUAL)
        if previous is not None and previous != operator_id:
            await self._drain(self.pool.sources_served_by({previous}))
        await self._finish()
        return self.outcome

    async def close(self, interaction_id: int) -> RoutingOutcome:
        """Close one interaction (API): exactly what an `interaction.close` message does, so
        closing twice replays the first close. Unknown ids are refused as not found."""
        request = CloseRequest(0, CloseInteraction(interaction_id=interaction_id))
        outcome = await self.route_batch([], [request])
        if isinstance(outcome.results.get(request.key), Refused):
            raise AssignmentRefused(f"interaction {interaction_id} not found", not_found=True)
        return outcome

    async def _facts_under_lock(self, interaction_id: int, operator_id: int) -> InteractionFacts:
        """The interaction's facts, read after locking every operator that could change them
        (its operator; for a waiting one, all of its source's, which a drain would hold)."""
        facts, requested = await self._facts_of(interaction_id), set[int]()
        for _ in range(3):
            waiting_in = {facts.source_id} if facts.status == WAITING else set()
            requested |= _holders(facts, operator_id)
            self.pool = await OperatorPool.lock(self.store, waiting_in, requested)
            # Fresh, now that nobody can move it; its row locked against an overdue sweep,
            # which numbers an event of a waiting one without the operators' locks.
            facts = await self._facts_of(interaction_id, lock=True)
            if _holders(facts, operator_id) <= requested:
                return facts
        raise AssignmentRefused(f"interaction {interaction_id} keeps changing; try again")

    async def _facts_of(self, interaction_id: int, *, lock: bool = False) -> InteractionFacts:
        facts = (await self.store.facts([interaction_id], lock=lock)).get(interaction_id)
        if facts is None:
            raise AssignmentRefused(f"unknown interaction {interaction_id}", not_found=True)
        return facts

    def _check_can_take(self, operator_id: int) -> None:
        state = self.pool.states.get(operator_id)
        if state is None:
            raise AssignmentRefused(f"unknown operator {operator_id}", not_found=True)
        if not state.active:
            raise AssignmentRefused(f"operator {operator_id} is inactive")
        if state.current_load >= state.load_limit:
            raise AssignmentRefused(
                f"operator {operator_id} is at its load limit ({state.load_limit})"
            )

    # -- creates -------------------------------------------------------------------------------

    async def _replay_known_message_ids(
        self, creates: Sequence[CreateRequest]
    ) -> list[CreateRequest]:
        """A message_id seen before makes no new interaction; its first event is sent again."""
        known = await self.store.ids_by_message_id(
            c.envelope.message_id for c in creates if c.envelope.message_id
        )
        first_events = await self.store.first_events(known.values())
        fresh: list[CreateRequest] = []
        primaries: dict[str, CreateRequest] = {}
        for request in creates:
            message_id = request.envelope.message_id
            if message_id in known:
                stored = first_events[known[message_id]]
                self._replay(request.key, request.envelope, stored, request.command.source_id)
            elif message_id and message_id in primaries:
                self._followers.append((request, primaries[message_id].key))
            else:
                if message_id:
                    primaries[message_id] = request
                fresh.append(request)
        return fresh

    def _refuse_unknown_sources(self, creates: list[CreateRequest]) -> list[CreateRequest]:
        known = self.pool.known_sources
        accepted = []
        for request in creates:
            if request.command.source_id in known:
                accepted.append(request)
            else:
                self.outcome.results[request.key] = Refused(
                    f"unknown source_id {request.command.source_id}", RefusalClass.UNKNOWN_SOURCE
                )
        return accepted

    async def _assign_new(self, creates: Sequence[CreateRequest]) -> None:
        if not creates:
            return
        leads = await self._resolve_leads(creates)
        previous = await self._previous_operators(creates, leads)
        choices: list[tuple[int | None, AssignReason]] = []
        for request in creates:
            lead = leads.lead_of[request.key]
            operator_id, reason = self._choose(request.command.source_id, previous.get(lead))
            choices.append((operator_id, reason))
            if operator_id is not None:
                previous[lead] = operator_id  # this lead's most recent, for the rest of the batch
        rows = [
            self._new_row(request, leads.lead_of[request.key], operator_id)
            for request, (operator_id, _) in zip(creates, choices, strict=True)
        ]
        ids = await self.store.insert_interactions(rows)
        first_of_lead: dict[str, tuple[int, Envelope]] = {}
        for request, row, interaction_id, (_, reason) in zip(
            creates, rows, ids, choices, strict=True
        ):
            shown = leads.shown[row.lead_uuid]
            facts = InteractionFacts(
                interaction_id,
                row.lead_uuid,
                row.source_id,
                row.operator_id,
                row.status,
                row.priority,
                row.message_id,
                row.correlation_id,
                row.reply_to,
                shown.email,
                shown.phone,
                shown.handle,
                0,  # no event yet: its first is 1, the row's default
            )
            if row.operator_id is None:
                event = self._emit(facts, EventType.WAITING, request.envelope)
            else:
                event = self._emit(facts, EVENT_OF[row.status], request.envelope, reason)
            self._record(request.key, facts, event)
            first_of_lead.setdefault(row.lead_uuid, (interaction_id, request.envelope))
        if leads.merges:  # after the interaction's own event: not its first
            counts = Counter(merge.survivor for merge in leads.merges)
            last = await self.store.advance_lead_sequences(counts)
            for merge in leads.merges:
                sequence = last[merge.survivor] - counts[merge.survivor] + 1
                counts[merge.survivor] -= 1
                self._emit_merged(merge, *first_of_lead[merge.survivor], sequence)

    async def _resolve_leads(self, creates: Sequence[CreateRequest]) -> LeadResolution:
        return await self.resolve_leads([(c.key, c.command.contacts) for c in creates])

    async def resolve_leads(self, commands: Sequence[Command]) -> LeadResolution:
        """Find, create or merge the leads of these commands (`routing/identity.py` decides)."""
        contacts = {c for _, cs in commands for c in cs}
        owners, known = await self.store.leads_of(contacts)
        resolution = resolve_leads(commands, owners, known, self.new_event_id)
        if resolution.merges or resolution.changed_leads:
            # It changes stored leads: lock them and decide again on what is true under the
            # lock. The common batch (known leads found, new ones created) takes no lock.
            owners, known = await self.store.leads_of(contacts, lock=True)
            resolution = resolve_leads(commands, owners, known, self.new_event_id)
        now = self.now
        if resolution.new_leads:
            shown = resolution.shown
            await self.store.insert_leads(
                [
                    NewLead(u, shown[u].email, shown[u].phone, shown[u].handle, now)
                    for u in resolution.new_leads
                ]
            )
        if resolution.merges:
            await self.store.merge_leads(resolution.merges)
        if resolution.new_contacts:
            await self.store.insert_contacts(
                [
                    NewContact(lead, c.kind.value, c.value, now)
                    for c, lead in resolution.new_contacts
                ]
            )
        if resolution.changed_leads:
            await self.store.show_contacts(
                {u: resolution.shown[u] for u in resolution.changed_leads}
            )
        return resolution

    async def _previous_operators(
        self, creates: Sequence[CreateRequest], leads: LeadResolution
    ) -> dict[str, int | None]:
        """For sticky sources only: each lead's most recent operator (one read per batch)."""
        sticky = self.pool.sticky_sources
        wanted = {leads.lead_of[c.key] for c in creates if c.command.source_id in sticky}
        return await self.store.last_operators(wanted) if wanted else {}

    def _choose(self, source_id: int, previous: int | None) -> tuple[int | None, AssignReason]:
        """The lead's previous operator on a sticky source when it is a candidate (active,
        weighted for the source, under its limit), else a weighted draw among the candidates;
        the slot is taken at once, so the batch stays exact."""
        candidates = self.pool.candidates(source_id)
        operator_id: int | None
        if (
            previous is not None
            and source_id in self.pool.sticky_sources
            and any(c.operator_id == previous for c in candidates)
        ):
            operator_id, reason = previous, STICKY
        else:
            operator_id, reason = select_operator(candidates, self.rng), WEIGHTED
        if operator_id is not None:
            self.pool.take(operator_id)
        return operator_id, reason

    def _new_row(
        self, request: CreateRequest, lead_uuid: str, operator_id: int | None
    ) -> NewInteraction:
        envelope, now, source_id = request.envelope, self.now, request.command.source_id
        status, offer_expires_at = WAITING, None
        if operator_id is not None:
            offer_expires_at = self.pool.offer_deadline(source_id, now)
            status = ASSIGNED if offer_expires_at is None else OFFERED
        return NewInteraction(
            lead_uuid,
            source_id,
            operator_id,
            status,
            True,
            request.command.payload,
            envelope.message_id,
            envelope.correlation_id,
            envelope.reply_to,
            now,
            None if operator_id is None else now,
            request.command.priority,
            offer_expires_at,
        )

    # -- closes --------------------------------------------------------------------------------

    async def _closable(
        self, closes: Sequence[CloseRequest]
    ) -> list[tuple[CloseRequest, InteractionFacts]]:
        """Refuse unknown ids, replay already-closed ones, return the rest with their facts."""
        facts = await self.store.facts(c.command.interaction_id for c in closes)
        if waiting := [i for i, f in facts.items() if f.status == WAITING]:
            # Read again with their rows locked: an overdue sweep numbers an event of a waiting
            # interaction holding its row, not its source's operators, and the close's event
            # must come after it (`last_sequence` as that sweep left it).
            facts.update(await self.store.facts(waiting, lock=True))
        already = await self.store.events_of_type(
            (i for i, f in facts.items() if f.status == CLOSED), EventType.CLOSED
        )
        closing: list[tuple[CloseRequest, InteractionFacts]] = []
        first_close: dict[int, int] = {}
        for request in closes:
            interaction_id = request.command.interaction_id
            found = facts.get(interaction_id)
            stored = already.get(interaction_id)
            if found is None:
                self._refuse_unknown_interaction(request.key, interaction_id)
            elif interaction_id in first_close:
                self._followers.append((request, first_close[interaction_id]))
            elif stored is not None:
                self._replay(request.key, request.envelope, stored, found.source_id)
            else:  # open, or closed without an event (the spec's bare set_inactive)
                first_close[interaction_id] = request.key
                closing.append((request, found))
        return closing

    async def _close(self, closing: Sequence[tuple[CloseRequest, InteractionFacts]]) -> set[int]:
        """Close now, in the database too: the drain that follows reads waiting rows from it,
        and must not hand out an interaction this very batch is closing."""
        freed: set[int] = set()
        for request, facts in closing:
            if facts.status in HOLDS_A_SLOT and facts.operator_id is not None:
                self.pool.release(facts.operator_id)
                freed.add(facts.operator_id)
                if request.envelope.traceparent is not None:
                    self._freed_by[facts.operator_id] = request.envelope
            closed = replace(facts, status=CLOSED)
            self._record(
                request.key, closed, self._emit(closed, EventType.CLOSED, request.envelope)
            )
        await self.store.set_closed([facts.id for _, facts in closing], self.now)
        return freed

    # -- accepts -------------------------------------------------------------------------------

    async def _accept(self, accepts: Sequence[AcceptRequest]) -> None:
        """An open offer to the accepting operator, before its deadline, becomes an assignment
        (its place is already counted); an accept repeated replays its `accepted` event; any
        other is refused with the reason. Read after the locks and this batch's closes."""
        if not accepts:
            return
        facts = await self.store.facts(a.command.interaction_id for a in accepts)
        deadlines = await self.store.offer_deadlines(
            i for i, f in facts.items() if f.status == OFFERED
        )
        already = await self.store.events_of_type(
            (i for i, f in facts.items() if f.status == ASSIGNED), EventType.ACCEPTED
        )
        accepted: dict[int, int] = {}
        first_accept: dict[int, AcceptRequest] = {}
        refused: list[tuple[AcceptRequest, InteractionFacts]] = []
        for request in accepts:
            interaction_id = request.command.interaction_id
            operator_id = request.command.operator_id
            found = facts.get(interaction_id)
            stored = already.get(interaction_id)
            deadline = deadlines.get(interaction_id)
            if found is None:
                self._refuse_unknown_interaction(request.key, interaction_id)
            elif interaction_id in first_accept:
                first = first_accept[interaction_id]
                if first.command.operator_id == operator_id:
                    self._followers.append((request, first.key))
                else:  # taken by the first accept in this very batch
                    taken = replace(found, status=ASSIGNED, operator_id=first.command.operator_id)
                    refused.append((request, taken))
            elif found.status == ASSIGNED and found.operator_id == operator_id and stored:
                self._replay(request.key, request.envelope, stored, found.source_id)
            elif (
                found.status == OFFERED
                and found.operator_id == operator_id
                and deadline is not None
                and self.now < deadline
            ):
                first_accept[interaction_id] = request
                accepted[interaction_id] = operator_id
                taken = replace(found, status=ASSIGNED)
                self._record(
                    request.key, taken, self._emit(taken, EventType.ACCEPTED, request.envelope)
                )
            else:
                refused.append((request, found))
        if accepted:
            await self.store.set_assigned(accepted, self.now)
        if refused:
            await self._refuse_accepts(refused, deadlines)

    async def _refuse_accepts(
        self,
        refused: Sequence[tuple[AcceptRequest, InteractionFacts]],
        deadlines: dict[int, datetime],
    ) -> None:
        expired = await self.store.expired_operators(f.id for _, f in refused)
        for request, found in refused:
            operator_id = request.command.operator_id
            reason = why_not_accepted(
                found,
                operator_id,
                operator_id in expired.get(found.id, ()),
                deadlines.get(found.id),
                self.now,
            )
            self.outcome.results[request.key] = Refused(reason, RefusalClass.OFFER_NOT_OPEN)

    # -- waiting -------------------------------------------------------------------------------

    async def _drain(self, source_ids: set[int]) -> None:
        """Highest priority first, oldest first within a priority, while any of these sources
        has a free operator."""
        after: WaitingCursor | None = None
        while sources := source_ids & self.pool.sources_with_capacity():
            waiting = await self.store.next_waiting(sources, after, DRAIN_CHUNK)
            if not waiting:
                return
            excluded = await self.store.expired_operators(facts.id for facts in waiting)
            assignments: dict[int, int] = {}
            offers: dict[int, Offer] = {}
            for facts in waiting:
                candidates = self.pool.candidates(facts.source_id, excluded.get(facts.id))
                operator_id = select_operator(candidates, self.rng)
                if operator_id is None:
                    continue
                self.pool.take(operator_id)
                expires_at = self.pool.offer_deadline(facts.source_id, self.now)
                if expires_at is None:
                    assignments[facts.id] = operator_id
                    status = ASSIGNED
                else:
                    offers[facts.id] = Offer(operator_id, expires_at)
                    status = OFFERED
                self._emit(
                    replace(facts, operator_id=operator_id, status=status),
                    EVENT_OF[status],
                    self._drained_envelope(facts, operator_id),
                    DRAIN,
                )
            if assignments:
                await self.store.set_assigned(assignments, self.now)
            if offers:
                await self.store.set_offered(offers, self.now)
            after = WaitingCursor(waiting[-1].priority, waiting[-1].id)

    def _drained_envelope(self, facts: InteractionFacts, operator_id: int) -> Envelope:
        """A drained interaction's event answers its own command (correlation_id, reply_to)
        and continues the trace of the close that freed its operator, if that had one."""
        cause = self._freed_by.get(operator_id) if self._freed_by else None
        if cause is None:
            return Envelope(None, facts.correlation_id, facts.reply_to)
        return Envelope(
            None, facts.correlation_id, facts.reply_to, cause.traceparent, cause.tracestate
        )

    # -- bookkeeping ---------------------------------------------------------------------------

    def _emit(
        self,
        facts: InteractionFacts,
        event_type: EventType,
        envelope: Envelope,
        reason: AssignReason | None = None,
    ) -> PendingEvent:
        event, row = build_event(
            self.new_event_id(),
            facts,
            event_type,
            self.now,
            envelope.correlation_id,
            envelope.reply_to,
            reason,
            envelope.traceparent,
            envelope.tracestate,
            sequence=self._next_sequence(facts),
            owner=self.owner,
        )
        self._outbox_rows.append(row)
        self.outcome.events.append(event)
        return event

    def _next_sequence(self, facts: InteractionFacts) -> int:
        """The interaction's next event number. Facts read in this transaction may predate
        its own earlier events (written at `_finish`), so the higher of the two counts."""
        sequence = max(self._sequences.get(facts.id, 0), facts.last_sequence) + 1
        self._sequences[facts.id] = sequence
        if sequence > 1:  # a new interaction's 1 is its row's default
            self._unwritten_sequences[facts.id] = sequence
        return sequence

    def _emit_merged(
        self, merge: LeadMerge, interaction_id: int, envelope: Envelope, sequence: int
    ) -> None:
        """`lead.merged`, stored with the interaction whose command revealed the merge."""
        event, row = build_merged_event(
            self.new_event_id(),
            merge,
            interaction_id,
            self.now,
            envelope.correlation_id,
            envelope.traceparent,
            envelope.tracestate,
            sequence=sequence,
            owner=self.owner,
        )
        self._outbox_rows.append(row)
        self.outcome.events.append(event)

    def _refuse_unknown_interaction(self, key: int, interaction_id: int) -> None:
        self.outcome.results[key] = Refused(
            f"unknown interaction {interaction_id}", RefusalClass.UNKNOWN_INTERACTION
        )

    def _record(self, key: int, facts: InteractionFacts, event: PendingEvent) -> None:
        self.outcome.results[key] = Routed(
            facts.id, facts.status, facts.operator_id, facts.source_id, event
        )

    def _replay(self, key: int, envelope: Envelope, stored: StoredEvent, source_id: int) -> None:
        """Send a stored event again, addressed to this command's correlation_id/reply_to."""
        event = PendingEvent(
            stored.event_id,
            stored.routing_key,
            stored.body,
            envelope.correlation_id,
            envelope.reply_to,
            envelope.traceparent,
            envelope.tracestate,
        )
        self.outcome.events.append(event)
        status = STATUS_AFTER[EventType(stored.routing_key)]
        self.outcome.results[key] = Routed(
            stored.interaction_id, status, None, source_id, event, True
        )

    def _copy_result(self, key: int, envelope: Envelope, of_key: int) -> None:
        original = self.outcome.results.get(of_key)
        if isinstance(original, Routed):
            event = replace(
                original.event,
                correlation_id=envelope.correlation_id,
                reply_to=envelope.reply_to,
                traceparent=envelope.traceparent,
                tracestate=envelope.tracestate,
            )
            self.outcome.events.append(event)
            self.outcome.results[key] = replace(original, event=event, replayed=True)
        elif original is not None:
            self.outcome.results[key] = original

    async def _finish(self) -> None:
        """Write what the transaction decided; repeated commands in the batch share its result."""
        await self.pool.flush(self.store)
        await self.store.add_events(self._outbox_rows)
        self._outbox_rows = []
        if self._unwritten_sequences:
            await self.store.set_sequences(self._unwritten_sequences)
            self._unwritten_sequences = {}
        for request, primary_key in self._followers:
            self._copy_result(request.key, request.envelope, primary_key)


def _holders(facts: InteractionFacts, operator_id: int) -> set[int]:
    """Operators whose rows a manual assignment of this interaction changes."""
    if facts.status in HOLDS_A_SLOT and facts.operator_id is not None:
        return {operator_id, facts.operator_id}
    return {operator_id}


def why_not_accepted(
    facts: InteractionFacts,
    operator_id: int,
    expired_for_operator: bool,
    deadline: datetime | None,
    now: datetime,
) -> str:
    """The one-line reason an accept is refused (its dead letter's `x-error`, the API's 409)."""
    interaction_id = facts.id
    if expired_for_operator or (
        facts.status == OFFERED
        and facts.operator_id == operator_id
        and deadline is not None
        and now >= deadline
    ):
        return f"the offer of interaction {interaction_id} to operator {operator_id} expired"
    if facts.status == OFFERED:
        return (
            f"interaction {interaction_id} is offered to operator {facts.operator_id}, "
            f"not to operator {operator_id}"
        )
    if facts.status == ASSIGNED:
        return (
            f"interaction {interaction_id} is assigned to operator {facts.operator_id}, not offered"
        )
    return f"interaction {interaction_id} is {facts.status.value}, not offered to anyone"


class AssignmentRefused(Exception):
    """A manual assignment (or close) that cannot happen; `not_found` separates 404s from
    409s."""

    def __init__(self, reason: str, *, not_found: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_found = not_found
