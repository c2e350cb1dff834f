"""The router's cases, written once, for every kind of store.

`tests/unit/test_router.py` runs them on `InMemoryRoutingStore` (the unit tests' double),
`tests/unit/test_router_on_sqlite.py` on the SQLite lane's statements in memory, through the
lane's own seam; `tests/integration/test_router.py` runs the same functions on SQLite files
through SQLAlchemy's sessions and through the worker's sqlite3 runner, and on PostgreSQL. A
case that passes on one kind and fails on another is a store that disagrees with the others.
Every router gets a seeded RNG.
"""

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from random import Random
from typing import NamedTuple, Protocol, TypeVar

import pytest

from routing.commands import AcceptRequest, CloseRequest, CreateRequest, Envelope
from routing.outcomes import RefusalClass, Refused, Routed, RoutingOutcome
from routing.router import AssignmentRefused, Router
from routing.store import RoutingStore
from schemas.events import InteractionStatus
from schemas.messages import AcceptInteraction, CloseInteraction, CreateInteraction
from tests.support.memory_store import InMemoryRoutingStore

T = TypeVar("T")
ASSIGNED, WAITING, CLOSED, OFFERED = (
    InteractionStatus.ASSIGNED,
    InteractionStatus.WAITING,
    InteractionStatus.CLOSED,
    InteractionStatus.OFFERED,
)
SEED = 3
CLOSED_KEY = "interaction.closed"


class Row(NamedTuple):
    """An interaction as a case inspects it, from whichever store."""

    id: int
    status: InteractionStatus
    operator_id: int | None
    is_active: bool


class World(Protocol):
    """A store kind with what the cases need around it: transactions, set-up, inspection."""

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T: ...

    async def add_source(
        self,
        identifier: str,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> int: ...

    async def add_operator(self, name: str, load_limit: int, active: bool = True) -> int: ...

    async def set_weights(self, source_id: int, weights: dict[int, int]) -> None: ...

    async def interactions(self) -> list[Row]:
        """Every interaction, by id."""
        ...

    async def loads(self) -> dict[int, int]:
        """Every operator's `current_load`."""
        ...

    async def leads(self) -> dict[str, set[tuple[str, str]]]:
        """Every lead's contacts, (kind, value)."""
        ...

    async def lead_of(self) -> dict[int, str]:
        """Every interaction's lead uuid."""
        ...


Case = Callable[[World], Awaitable[None]]


class MemoryWorld:
    """`InMemoryRoutingStore` as a `World`."""

    def __init__(self) -> None:
        self.store = InMemoryRoutingStore()

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        return await self.store.run(work)

    async def add_source(
        self,
        identifier: str,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> int:
        return self.store.add_source(sticky, max_wait_s, accept_timeout_s)

    async def add_operator(self, name: str, load_limit: int, active: bool = True) -> int:
        return self.store.add_operator(load_limit, active)

    async def set_weights(self, source_id: int, weights: dict[int, int]) -> None:
        self.store.set_weights(source_id, weights)

    async def interactions(self) -> list[Row]:
        return [
            Row(i.id, i.status, i.operator_id, i.is_active)
            for i in sorted(self.store.interactions.values(), key=lambda i: i.id)
        ]

    async def loads(self) -> dict[int, int]:
        return {i: state.current_load for i, state in self.store.operators.items()}

    async def leads(self) -> dict[str, set[tuple[str, str]]]:
        found: dict[str, set[tuple[str, str]]] = {uuid: set() for uuid in self.store.leads}
        for contact, uuid in self.store.contacts.items():
            found[uuid].add((contact.kind.value, contact.value))
        return found

    async def lead_of(self) -> dict[int, str]:
        return {i: stored.lead_uuid for i, stored in self.store.interactions.items()}


# -- commands and checks ------------------------------------------------------------------------


def create(
    key: int,
    email: str | None,
    source_id: int,
    message_id: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    *,
    phone: str | None = None,
    handle: str | None = None,
    priority: int = 0,
) -> CreateRequest:
    """A create whose message_id is unique unless one is given."""
    command = CreateInteraction(
        email=email, phone=phone, handle=handle, source_id=source_id, priority=priority
    )
    envelope = Envelope(message_id or f"m-{key}-{email}-{phone}-{handle}", correlation_id, reply_to)
    return CreateRequest(key, command, envelope)


def close(key: int, interaction_id: int, correlation_id: str | None = None) -> CloseRequest:
    command = CloseInteraction(interaction_id=interaction_id)
    return CloseRequest(key, command, Envelope(None, correlation_id))


def accept(key: int, interaction_id: int, operator_id: int) -> AcceptRequest:
    command = AcceptInteraction(interaction_id=interaction_id, operator_id=operator_id)
    return AcceptRequest(key, command, Envelope(f"accept-{key}", f"c-accept-{key}"))


async def route(
    world: World,
    creates: Sequence[CreateRequest] = (),
    closes: Sequence[CloseRequest] = (),
    accepts: Sequence[AcceptRequest] = (),
    now: datetime | None = None,
) -> RoutingOutcome:
    """One batch; `now` pretends the batch runs at that moment (an offer's deadline passed)."""

    def work(store: RoutingStore) -> Awaitable[RoutingOutcome]:
        router = Router(store, Random(SEED))
        router.now = now or router.now
        return router.route_batch(creates, closes, accepts)

    return await world.run(work)


async def expire(world: World, now: datetime) -> RoutingOutcome:
    """A timer's sweep of the offers due at `now`."""
    return await world.run(lambda store: Router(store, Random(SEED)).expire_offers(now))


async def assign(world: World, interaction_id: int, operator_id: int) -> RoutingOutcome:
    return await world.run(
        lambda store: Router(store, Random(SEED)).assign(interaction_id, operator_id)
    )


async def close_one(world: World, interaction_id: int) -> RoutingOutcome:
    """The API's close."""
    return await world.run(lambda store: Router(store, Random(SEED)).close(interaction_id))


def routed(outcome: RoutingOutcome, key: int) -> Routed:
    result = outcome.results[key]
    assert isinstance(result, Routed), result
    return result


def keys(outcome: RoutingOutcome) -> list[str]:
    return [event.routing_key for event in outcome.events]


async def by_id(world: World) -> dict[int, Row]:
    return {row.id: row for row in await world.interactions()}


async def assert_loads_match_rows(world: World) -> None:
    """`current_load` is the number of assigned and offered interactions: the invariant every
    case keeps."""
    rows = await world.interactions()
    assigned = Counter(r.operator_id for r in rows if r.status in (ASSIGNED, OFFERED))
    loads = await world.loads()
    assert loads == {op: assigned.get(op, 0) for op in loads}
    assert all(r.is_active == (r.status != CLOSED) for r in rows)


# -- the cases ----------------------------------------------------------------------------------


async def choice_follows_the_weights_and_the_seed(world: World) -> None:
    """Draws follow the weights among active operators under their limit; one seed, one draw."""
    source = await world.add_source("s")
    light = await world.add_operator("light", 1000)
    heavy = await world.add_operator("heavy", 1000)
    off = await world.add_operator("off", 1000, active=False)
    full = await world.add_operator("full", 0)
    await world.set_weights(source, {light: 25, heavy: 75, off: 100, full: 100})

    first = await route(world, [create(k, f"a{k}@example.com", source) for k in range(200)])
    second = await route(world, [create(k, f"b{k}@example.com", source) for k in range(200)])

    picks = [routed(first, k).operator_id for k in range(200)]
    assert [routed(second, k).operator_id for k in range(200)] == picks  # same seed, same draws
    counts = Counter(picks)
    assert set(counts) == {light, heavy}
    assert 120 <= counts[heavy] <= 180  # 150 expected; the seed makes it exact on every store
    assert (await world.loads())[heavy] == 2 * counts[heavy]
    await assert_loads_match_rows(world)


async def waits_when_nobody_is_free(world: World) -> None:
    source = await world.add_source("s")
    unserved = await world.add_source("unserved")  # no weights at all
    lone = await world.add_operator("lone", 1)
    await world.set_weights(source, {lone: 10})

    outcome = await route(
        world,
        [
            create(0, "a@example.com", source),
            create(1, "b@example.com", source),
            create(2, "c@example.com", unserved),
            create(3, "d@example.com", 999),
        ],
    )

    assert (routed(outcome, 0).status, routed(outcome, 0).operator_id) == (ASSIGNED, lone)
    assert (routed(outcome, 1).status, routed(outcome, 1).operator_id) == (WAITING, None)
    assert routed(outcome, 2).status == WAITING
    refused = outcome.results[3]
    assert isinstance(refused, Refused) and refused.kind is RefusalClass.UNKNOWN_SOURCE
    assert keys(outcome) == ["interaction.assigned", "interaction.waiting", "interaction.waiting"]
    assert [r.status for r in await world.interactions()] == [ASSIGNED, WAITING, WAITING]
    assert await world.loads() == {lone: 1}
    await assert_loads_match_rows(world)


async def a_close_gives_the_slot_to_the_oldest_waiting(world: World) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    first = await route(world, [create(0, "a@example.com", source)])
    waiting = []
    for n in range(3):  # one batch each: their order is the order they came in
        outcome = await route(world, [create(0, f"w{n}@example.com", source)])
        waiting.append(routed(outcome, 0).interaction_id)

    closed = await route(world, closes=[close(0, routed(first, 0).interaction_id)])

    assert keys(closed) == ["interaction.closed", "interaction.assigned"]
    rows = await by_id(world)
    assert [rows[i].status for i in waiting] == [ASSIGNED, WAITING, WAITING]
    assert rows[waiting[0]].operator_id == operator

    closed = await route(world, closes=[close(0, waiting[0])])

    rows = await by_id(world)
    assert [rows[i].status for i in waiting] == [CLOSED, ASSIGNED, WAITING]
    await assert_loads_match_rows(world)


async def a_close_frees_the_operator(world: World) -> None:
    """A close (the worker's and the API's `Router.close`) frees the slot; unknown ids are
    refused, as a dead letter in a batch and as not found through `close`."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 2)
    await world.set_weights(source, {operator: 10})
    first = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    a, b = routed(first, 0).interaction_id, routed(first, 1).interaction_id

    outcome = await route(world, closes=[close(0, a, "c-0"), close(1, 424242)])

    result = routed(outcome, 0)
    assert (result.status, result.operator_id, result.replayed) == (CLOSED, operator, False)
    assert (result.event.routing_key, result.event.correlation_id) == ("interaction.closed", "c-0")
    refused = outcome.results[1]
    assert isinstance(refused, Refused) and refused.kind is RefusalClass.UNKNOWN_INTERACTION
    assert (await by_id(world))[a] == Row(a, CLOSED, operator, False)
    assert await world.loads() == {operator: 1}

    assert routed(await close_one(world, b), 0).status == CLOSED
    with pytest.raises(AssignmentRefused) as unknown:
        await close_one(world, 424242)
    assert unknown.value.not_found
    assert await world.loads() == {operator: 0}
    await assert_loads_match_rows(world)


async def closing_a_waiting_one_frees_nobody(world: World) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    first = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )

    outcome = await route(world, closes=[close(0, routed(first, 1).interaction_id)])

    assert keys(outcome) == ["interaction.closed"]
    assert routed(outcome, 0).operator_id is None
    assert await world.loads() == {operator: 1}
    await assert_loads_match_rows(world)


async def closing_a_waiting_one_with_the_one_that_frees_the_slot(world: World) -> None:
    """The drain after the first close must not give the slot to the interaction the same
    batch is closing: it stays closed and the operator ends with nothing assigned."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", load_limit=1)
    await world.set_weights(source, {operator: 10})
    first = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    assigned, waiting = routed(first, 0), routed(first, 1)
    assert (assigned.status, waiting.status) == (ASSIGNED, WAITING)

    second = await route(
        world, closes=[close(0, assigned.interaction_id), close(1, waiting.interaction_id)]
    )

    assert keys(second) == ["interaction.closed"] * 2
    assert {r.status for r in await world.interactions()} == {CLOSED}
    assert await world.loads() == {operator: 0}
    await assert_loads_match_rows(world)


async def a_close_frees_the_slot_for_a_create_in_the_same_batch_after_older_waiting(
    world: World,
) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", load_limit=1)
    await world.set_weights(source, {operator: 10})
    first = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )

    second = await route(
        world,
        [create(5, "c@example.com", source)],
        [close(0, routed(first, 0).interaction_id)],
    )

    # The older waiting interaction takes the freed slot before the new one.
    assert keys(second) == ["interaction.closed", "interaction.assigned", "interaction.waiting"]
    assert routed(second, 5).status == WAITING
    assert (await by_id(world))[routed(first, 1).interaction_id].status == ASSIGNED
    assert await world.loads() == {operator: 1}
    await assert_loads_match_rows(world)


async def manual_assignment_moves_the_slot_and_drains(world: World) -> None:
    """Assigning takes a slot; moving an assigned interaction frees its previous operator,
    whose waiting interactions then take it. Assigning where it already is changes nothing."""
    source = await world.add_source("s")
    first_op = await world.add_operator("first", 1)
    second_op = await world.add_operator("second", 1)  # no weight: only manual assignment
    await world.set_weights(source, {first_op: 10})
    created = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    a, b = routed(created, 0).interaction_id, routed(created, 1).interaction_id

    moved = await assign(world, a, second_op)

    assert keys(moved) == ["interaction.assigned", "interaction.assigned"]
    rows = await by_id(world)
    assert (rows[a].operator_id, rows[b].operator_id) == (second_op, first_op)
    assert await world.loads() == {first_op: 1, second_op: 1}
    assert (await assign(world, a, second_op)).events == []
    await assert_loads_match_rows(world)


async def manual_assignment_refusals(world: World) -> None:
    """Full, inactive or unknown operators and closed or unknown interactions: refused, with
    nothing changed (404 for what does not exist, 409 for the rest)."""
    source = await world.add_source("s")
    full = await world.add_operator("full", 1)
    off = await world.add_operator("off", 5, active=False)
    created = await route(
        world,
        [
            create(0, "a@example.com", source),
            create(1, "b@example.com", source),
            create(2, "c@example.com", source),
        ],
    )
    first, second, third = (routed(created, k).interaction_id for k in range(3))
    await assign(world, first, full)
    await route(world, closes=[close(0, third)])
    before = (await world.interactions(), await world.loads())

    cases = {
        (second, full): False,  # at its limit
        (second, off): False,  # inactive
        (third, full): False,  # closed
        (second, 9999): True,  # unknown operator
        (9999, full): True,  # unknown interaction
    }
    for (interaction, operator), not_found in cases.items():
        with pytest.raises(AssignmentRefused) as refused:
            await assign(world, interaction, operator)
        assert refused.value.not_found is not_found, (interaction, operator)
    assert (await world.interactions(), await world.loads()) == before
    await assert_loads_match_rows(world)


async def a_repeated_message_id_replays_its_first_event(world: World) -> None:
    """A message_id seen before makes nothing new: its first event goes out again, addressed
    to the repeat's correlation_id and reply_to. Within one batch the same holds."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 5)
    await world.set_weights(source, {operator: 10})
    first = await route(world, [create(0, "a@example.com", source, "m-1", "c-1")])

    again = await route(world, [create(0, "a@example.com", source, "m-1", "c-2", "r-2")])

    original, repeat = routed(first, 0), routed(again, 0)
    assert repeat.replayed and not original.replayed
    assert (repeat.interaction_id, repeat.status) == (original.interaction_id, ASSIGNED)
    assert (repeat.event.event_id, repeat.event.body) == (
        original.event.event_id,
        original.event.body,
    )
    assert (repeat.event.correlation_id, repeat.event.reply_to) == ("c-2", "r-2")

    both = await route(
        world,
        [
            create(0, "b@example.com", source, "m-2", "c-3"),
            create(1, "b@example.com", source, "m-2", "c-4"),
        ],
    )

    primary, follower = routed(both, 0), routed(both, 1)
    assert follower.replayed and follower.interaction_id == primary.interaction_id
    assert [e.event_id for e in both.events] == [primary.event.event_id] * 2
    assert [e.correlation_id for e in both.events] == ["c-3", "c-4"]
    assert len(await world.interactions()) == 2
    assert await world.loads() == {operator: 2}
    await assert_loads_match_rows(world)


async def a_repeated_close_replays_the_first_close(world: World) -> None:
    """Closing again sends the stored close event again and frees nothing twice; two closes of
    one interaction in one batch close it once."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    created = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    a, b = routed(created, 0).interaction_id, routed(created, 1).interaction_id
    first = await route(world, closes=[close(0, a, "c-1")])

    again = await route(world, closes=[close(0, a, "c-2")])

    original, repeat = routed(first, 0), routed(again, 0)
    assert repeat.replayed and (repeat.interaction_id, repeat.status) == (a, CLOSED)
    assert repeat.event.event_id == original.event.event_id
    assert repeat.event.correlation_id == "c-2"
    assert keys(again) == ["interaction.closed"]  # no drain: nothing was freed
    assert (await by_id(world))[b].status == ASSIGNED
    assert await world.loads() == {operator: 1}

    twice = await route(world, closes=[close(0, b, "c-3"), close(1, b, "c-4")])

    assert routed(twice, 1).replayed
    assert [e.event_id for e in twice.events] == [routed(twice, 0).event.event_id] * 2
    assert await world.loads() == {operator: 0}
    await assert_loads_match_rows(world)


# -- leads by any contact ------------------------------------------------------------------------


def event_body(outcome: RoutingOutcome, key: int) -> dict[str, object]:
    body: dict[str, object] = json.loads(routed(outcome, key).event.body)
    return body


async def a_lead_is_known_by_any_of_its_contacts(world: World) -> None:
    """A phone-only, then a handle-only contact make two leads; a command carrying the phone
    and an e-mail reaches the phone's lead and attaches the e-mail to it; events show the
    lead's contacts (the first of each kind)."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 50)
    await world.set_weights(source, {operator: 10})
    by_phone = await route(world, [create(0, None, source, phone="+79991234567")])
    by_handle = await route(world, [create(0, None, source, handle="user123@telegram")])
    again = await route(world, [create(0, "a@example.com", source, phone="+7 999 123-45-67")])

    phone_lead, handle_lead = routed(by_phone, 0), routed(by_handle, 0)
    lead_of = await world.lead_of()
    assert lead_of[routed(again, 0).interaction_id] == lead_of[phone_lead.interaction_id]
    assert lead_of[handle_lead.interaction_id] != lead_of[phone_lead.interaction_id]
    leads = await world.leads()
    assert leads[lead_of[phone_lead.interaction_id]] == {
        ("phone", "+79991234567"),
        ("email", "a@example.com"),
    }
    assert leads[lead_of[handle_lead.interaction_id]] == {("handle", "user123@telegram")}
    first = event_body(by_phone, 0)
    assert (first["email"], first["phone"], first["handle"]) == (None, "+79991234567", None)
    assert (first["reason"], first["priority"]) == ("weighted", 0)
    latest = event_body(again, 0)
    assert (latest["email"], latest["phone"]) == ("a@example.com", "+79991234567")
    await assert_loads_match_rows(world)


async def contacts_of_several_leads_merge_them_into_the_oldest(world: World) -> None:
    """A command whose contacts belong to two leads merges them into the older one: its uuid
    survives, the other's contacts and interactions move to it, one `lead.merged` event."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 50)
    await world.set_weights(source, {operator: 10})
    older = await route(world, [create(0, "a@example.com", source)])
    younger = await route(world, [create(0, None, source, handle="tg:42")])
    older_lead = routed(older, 0).event.body
    lead_of = await world.lead_of()
    survivor = lead_of[routed(older, 0).interaction_id]
    merged = lead_of[routed(younger, 0).interaction_id]

    both = await route(world, [create(0, "a@example.com", source, handle="tg:42")])

    assert keys(both) == ["interaction.assigned", "lead.merged"]
    merged_event = json.loads(both.events[1].body)
    assert (merged_event["lead_uuid"], merged_event["merged_lead_uuids"]) == (survivor, [merged])
    assert set((await world.lead_of()).values()) == {survivor}
    assert await world.leads() == {survivor: {("email", "a@example.com"), ("handle", "tg:42")}}
    shown = event_body(both, 0)
    assert (shown["lead_uuid"], shown["email"], shown["handle"]) == (
        survivor,
        "a@example.com",
        "tg:42",
    )
    assert json.loads(older_lead)["lead_uuid"] == survivor
    await assert_loads_match_rows(world)


async def commands_of_one_batch_sharing_a_contact_make_one_lead(world: World) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", 50)
    await world.set_weights(source, {operator: 10})

    batch = await route(
        world,
        [
            create(0, None, source, phone="+4930123456"),
            create(1, "x@example.com", source),
            create(2, "x@example.com", source, phone="+49 30 123456"),
        ],
    )

    lead_of = await world.lead_of()
    assert len({lead_of[routed(batch, k).interaction_id] for k in range(3)}) == 1
    assert "lead.merged" not in keys(batch)  # one new lead, nothing stored was merged
    assert list((await world.leads()).values()) == [
        {("phone", "+4930123456"), ("email", "x@example.com")}
    ]


# -- sticky sources and priorities ------------------------------------------------------------


async def a_sticky_source_sends_a_returning_lead_to_its_previous_operator(world: World) -> None:
    sticky = await world.add_source("sticky", sticky=True)
    plain = await world.add_source("plain")
    ops = [await world.add_operator(f"o{n}", 100) for n in range(4)]
    await world.set_weights(sticky, dict.fromkeys(ops, 25))
    await world.set_weights(plain, dict.fromkeys(ops, 25))

    first = await route(world, [create(0, "lead@example.com", sticky, "first")])
    again = await route(
        world, [create(k, "lead@example.com", sticky, f"again-{k}") for k in range(12)]
    )
    elsewhere = await route(
        world, [create(k, "lead@example.com", plain, f"plain-{k}") for k in range(12)]
    )

    chosen = routed(first, 0).operator_id
    assert event_body(first, 0)["reason"] == "weighted"
    assert {routed(again, k).operator_id for k in range(12)} == {chosen}
    assert {event_body(again, k)["reason"] for k in range(12)} == {"sticky"}
    assert {event_body(elsewhere, k)["reason"] for k in range(12)} == {"weighted"}
    assert len({routed(elsewhere, k).operator_id for k in range(12)}) > 1  # a plain draw
    await assert_loads_match_rows(world)


async def never_sticky_to_an_operator_who_is_full_or_no_longer_weighted(world: World) -> None:
    source = await world.add_source("sticky", sticky=True)
    first_op = await world.add_operator("first", 1)
    second_op = await world.add_operator("second", 5)
    await world.set_weights(source, {first_op: 100})
    first = await route(world, [create(0, "lead@example.com", source, "first")])
    assert routed(first, 0).operator_id == first_op
    await world.set_weights(source, {first_op: 100, second_op: 1})

    full = await route(world, [create(0, "lead@example.com", source, "full")])  # first_op is at 1/1

    assert (routed(full, 0).operator_id, event_body(full, 0)["reason"]) == (second_op, "weighted")
    await route(world, closes=[close(0, routed(first, 0).interaction_id)])
    back = await route(world, [create(0, "lead@example.com", source, "back")])
    # The most recent interaction is now second_op's: sticky follows it, not the first.
    assert (routed(back, 0).operator_id, event_body(back, 0)["reason"]) == (second_op, "sticky")
    await world.set_weights(source, {first_op: 100})  # second_op no longer serves the source
    unweighted = await route(world, [create(0, "lead@example.com", source, "unweighted")])
    assert (routed(unweighted, 0).operator_id, event_body(unweighted, 0)["reason"]) == (
        first_op,
        "weighted",
    )
    await assert_loads_match_rows(world)


async def waiting_interactions_drain_by_priority_then_age(world: World) -> None:
    """A backlog of mixed priorities is assigned highest first, oldest first within one."""
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    busy = routed(await route(world, [create(0, "busy@example.com", source)]), 0)
    priorities = [0, 5, 9, 5, 0, 9, 3]
    backlog = []
    for n, priority in enumerate(priorities):  # one batch each: ids follow arrival
        outcome = await route(world, [create(0, f"w{n}@example.com", source, priority=priority)])
        assert routed(outcome, 0).status == WAITING
        assert event_body(outcome, 0)["priority"] == priority
        backlog.append(routed(outcome, 0).interaction_id)

    order, current = [], busy.interaction_id
    for _ in priorities:
        closed = await route(world, closes=[close(0, current)])
        assigned = [
            json.loads(e.body) for e in closed.events if e.routing_key != "interaction.closed"
        ]
        assert [a["reason"] for a in assigned] == ["drain"]
        current = assigned[0]["interaction_id"]
        order.append(current)

    expected = sorted(backlog, key=lambda i: (-priorities[backlog.index(i)], i))
    assert order == expected
    await assert_loads_match_rows(world)


async def overdue_once_per_interaction_past_its_sources_sla(world: World) -> None:
    """Waiting past `max_wait_s` gives exactly one `interaction.overdue`; assigned ones and
    sources without an SLA never do; a second sweep finds nothing."""
    timed = await world.add_source("timed", max_wait_s=60)
    untimed = await world.add_source("untimed")
    operator = await world.add_operator("o", 1)
    await world.set_weights(timed, {operator: 10})
    created = await route(
        world,
        [
            create(0, "assigned@example.com", timed),
            create(1, "waits@example.com", timed),
            create(2, "no-sla@example.com", untimed),
        ],
    )
    waiting = routed(created, 1).interaction_id
    soon = datetime.now(UTC) + timedelta(seconds=30)
    later = datetime.now(UTC) + timedelta(seconds=61)

    def sweep(now: datetime) -> Awaitable[RoutingOutcome]:
        return world.run(lambda store: Router(store, Random(SEED)).mark_overdue(now))

    assert (await sweep(soon)).events == []
    first, again = await sweep(later), await sweep(later)

    assert keys(first) == ["interaction.overdue"] and again.events == []
    body = json.loads(first.events[0].body)
    assert (body["interaction_id"], body["status"], body["type"]) == (
        waiting,
        "waiting",
        "interaction.overdue",
    )
    assert (await by_id(world))[waiting].status == WAITING  # still waiting, now reported
    await assert_loads_match_rows(world)


def refusal(outcome: RoutingOutcome, key: int) -> Refused:
    result = outcome.results[key]
    assert isinstance(result, Refused), result
    return result


def bodies(outcome: RoutingOutcome) -> list[dict[str, object]]:
    return [json.loads(event.body) for event in outcome.events]


async def a_source_with_accept_timeout_offers_and_the_operator_accepts(world: World) -> None:
    """Offered (counted in the load, `interaction.offered` with its reason), then accepted by
    its operator only (`interaction.accepted`, load unchanged); an accept repeated replays the
    first; a source without `accept_timeout_s` assigns at once, as before."""
    offering = await world.add_source("offering", accept_timeout_s=30)
    direct = await world.add_source("direct")
    operator = await world.add_operator("o", 5)
    other = await world.add_operator("other", 5, active=False)
    await world.set_weights(offering, {operator: 10, other: 10})
    await world.set_weights(direct, {operator: 10})

    created = await route(
        world, [create(0, "a@example.com", offering), create(1, "b@example.com", direct)]
    )
    offered = routed(created, 0)
    assert (offered.status, offered.operator_id) == (OFFERED, operator)
    assert routed(created, 1).status == ASSIGNED
    assert keys(created) == ["interaction.offered", "interaction.assigned"]
    assert bodies(created)[0]["reason"] == "weighted"
    assert await world.loads() == {operator: 2, other: 0}

    interaction_id = offered.interaction_id
    wrong = await route(world, accepts=[accept(0, interaction_id, other)])
    assert refusal(wrong, 0).kind is RefusalClass.OFFER_NOT_OPEN
    assert refusal(wrong, 0).reason == (
        f"interaction {interaction_id} is offered to operator {operator}, not to operator {other}"
    )
    taken = await route(world, accepts=[accept(0, interaction_id, operator)])
    assert (routed(taken, 0).status, routed(taken, 0).operator_id) == (ASSIGNED, operator)
    assert keys(taken) == ["interaction.accepted"]
    body = bodies(taken)[0]
    assert (body["status"], body["operator_id"], body["reason"]) == ("assigned", operator, None)
    assert taken.events[0].correlation_id == "c-accept-0"
    again = await route(world, accepts=[accept(5, interaction_id, operator)])
    assert routed(again, 5).replayed and again.events[0].event_id == taken.events[0].event_id
    assert (await by_id(world))[interaction_id].status == ASSIGNED
    assert await world.loads() == {operator: 2, other: 0}
    late = datetime.now(UTC) + timedelta(seconds=31)
    assert (await expire(world, late)).events == []  # accepted: nothing left to expire
    await assert_loads_match_rows(world)


async def an_expired_offer_goes_to_another_operator_and_never_back(world: World) -> None:
    """Each expiry frees its operator and offers the interaction to a candidate whose offer of
    it has not expired (`reason` `drain`), else it waits; a late accept is refused as expired;
    a new operator gets it."""
    source = await world.add_source("s", accept_timeout_s=30)
    first_op = await world.add_operator("first", 1)
    second_op = await world.add_operator("second", 1)
    await world.set_weights(source, {first_op: 10, second_op: 10})
    created = await route(world, [create(0, "a@example.com", source)])
    interaction_id, first = routed(created, 0).interaction_id, routed(created, 0).operator_id
    assert first is not None
    second = second_op if first == first_op else first_op
    start = datetime.now(UTC)

    assert (await expire(world, start + timedelta(seconds=29))).events == []  # not yet
    moved = await expire(world, start + timedelta(seconds=31))
    assert keys(moved) == ["interaction.offer_expired", "interaction.offered"]
    expired_body, offered_body = bodies(moved)
    assert (expired_body["operator_id"], expired_body["status"]) == (first, "waiting")
    assert (offered_body["operator_id"], offered_body["reason"]) == (second, "drain")
    assert await world.loads() == {first: 0, second: 1}
    assert (await expire(world, start + timedelta(seconds=31))).events == []  # once only

    late = await route(world, accepts=[accept(0, interaction_id, first)])
    assert refusal(late, 0).reason == (
        f"the offer of interaction {interaction_id} to operator {first} expired"
    )
    waits = await expire(world, start + timedelta(seconds=70))
    assert keys(waits) == ["interaction.offer_expired"]  # the first one's expired: nobody left
    assert (await by_id(world))[interaction_id].status == WAITING
    assert await world.loads() == {first: 0, second: 0}
    other = await route(world, [create(1, "b@example.com", source)])
    assert routed(other, 1).status == OFFERED  # both are candidates for another interaction

    third = await world.add_operator("third", 1)
    await world.set_weights(source, {first_op: 10, second_op: 10, third: 10})
    drained = await world.run(lambda store: Router(store, Random(SEED)).drain(operator_ids=[third]))
    assert keys(drained) == ["interaction.offered"]
    assert (bodies(drained)[0]["interaction_id"], bodies(drained)[0]["operator_id"]) == (
        interaction_id,
        third,
    )
    await assert_loads_match_rows(world)


async def an_accept_after_the_deadline_is_refused_before_the_timer_runs(world: World) -> None:
    """The deadline decides, not the timer: a late accept is refused, and the sweep that
    follows expires the offer; one outcome either way."""
    source = await world.add_source("s", accept_timeout_s=30)
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    created = await route(world, [create(0, "a@example.com", source)])
    interaction_id = routed(created, 0).interaction_id
    late = datetime.now(UTC) + timedelta(seconds=31)

    refused = await route(world, accepts=[accept(0, interaction_id, operator)], now=late)
    assert refusal(refused, 0).reason == (
        f"the offer of interaction {interaction_id} to operator {operator} expired"
    )
    assert (await by_id(world))[interaction_id].status == OFFERED  # the timer's to expire
    assert keys(await expire(world, late)) == ["interaction.offer_expired"]
    assert (await by_id(world))[interaction_id].status == WAITING
    await assert_loads_match_rows(world)


async def closing_or_reassigning_an_offer_ends_it(world: World) -> None:
    """A closed offer frees its operator; an offer assigned by hand to another operator moves
    the slot; neither expires afterwards."""
    source = await world.add_source("s", accept_timeout_s=30)
    operator = await world.add_operator("o", 2)
    spare = await world.add_operator("spare", 2)
    await world.set_weights(source, {operator: 10})
    created = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    closing, moving = routed(created, 0).interaction_id, routed(created, 1).interaction_id
    assert await world.loads() == {operator: 2, spare: 0}

    await close_one(world, closing)
    manual = await assign(world, moving, spare)
    assert keys(manual) == ["interaction.assigned"]
    assert await world.loads() == {operator: 0, spare: 1}
    assert (await expire(world, datetime.now(UTC) + timedelta(seconds=31))).events == []
    rows = await by_id(world)
    assert (rows[closing].status, rows[moving].status) == (CLOSED, ASSIGNED)
    await assert_loads_match_rows(world)


# -- event sequences ----------------------------------------------------------------------------


def numbered(outcome: RoutingOutcome) -> list[tuple[str, int, int]]:
    """(type, interaction_id or 0, sequence) of each event, in order."""
    return [
        (body["type"], body.get("interaction_id", 0), body["sequence"])
        for body in map(json.loads, (event.body for event in outcome.events))
    ]


async def each_interactions_events_are_numbered_from_one(world: World) -> None:
    """1 for an interaction's first event, +1 for each later one, through a drain, a manual
    reassignment and a close; a repeated close replays its event with the same number."""
    source = await world.add_source("s")
    first_op = await world.add_operator("first", 1)
    spare = await world.add_operator("spare", 1)  # no weight: only manual assignment
    await world.set_weights(source, {first_op: 10})
    created = await route(
        world, [create(0, "a@example.com", source), create(1, "b@example.com", source)]
    )
    a, b = routed(created, 0).interaction_id, routed(created, 1).interaction_id
    assert numbered(created) == [("interaction.assigned", a, 1), ("interaction.waiting", b, 1)]

    closed = await route(world, closes=[close(0, a)])
    assert numbered(closed) == [("interaction.closed", a, 2), ("interaction.assigned", b, 2)]
    moved = await assign(world, b, spare)
    assert numbered(moved) == [("interaction.assigned", b, 3)]
    done = await close_one(world, b)
    assert numbered(done) == [("interaction.closed", b, 4)]
    again = await route(world, closes=[close(0, b, "c-again")])
    assert routed(again, 0).replayed and numbered(again) == [("interaction.closed", b, 4)]
    assert routed(again, 0).event.body == done.events[0].body

    later = await route(world, [create(7, "a@example.com", source)])  # a new interaction
    assert not routed(later, 7).replayed
    assert numbered(later) == [("interaction.assigned", routed(later, 7).interaction_id, 1)]
    await assert_loads_match_rows(world)


async def offers_expiries_accepts_and_overdue_continue_the_numbers(world: World) -> None:
    """Two events of one interaction in one transaction (an expiry and the offer to the next
    operator) take consecutive numbers; an overdue event takes its place in the line."""
    offering = await world.add_source("offering", accept_timeout_s=30)
    timed = await world.add_source("timed", max_wait_s=60)  # nobody serves it
    first_op = await world.add_operator("first", 1)
    second_op = await world.add_operator("second", 1)
    await world.set_weights(offering, {first_op: 10, second_op: 10})
    created = await route(
        world, [create(0, "a@example.com", offering), create(1, "w@example.com", timed)]
    )
    offered, waits = routed(created, 0).interaction_id, routed(created, 1).interaction_id
    start = datetime.now(UTC)

    moved = await expire(world, start + timedelta(seconds=31))
    assert numbered(moved) == [
        ("interaction.offer_expired", offered, 2),
        ("interaction.offered", offered, 3),
    ]
    operator = json.loads(moved.events[1].body)["operator_id"]
    taken = await route(world, accepts=[accept(0, offered, operator)])
    assert numbered(taken) == [("interaction.accepted", offered, 4)]
    assert numbered(await close_one(world, offered)) == [("interaction.closed", offered, 5)]

    late = await world.run(
        lambda store: Router(store, Random(SEED)).mark_overdue(start + timedelta(seconds=61))
    )
    assert numbered(late) == [("interaction.overdue", waits, 2)]
    assert numbered(await close_one(world, waits)) == [("interaction.closed", waits, 3)]
    await assert_loads_match_rows(world)


async def lead_merged_events_are_numbered_per_surviving_lead(world: World) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", 50)
    await world.set_weights(source, {operator: 10})
    oldest = await route(world, [create(0, "a@example.com", source)])
    await route(world, [create(0, None, source, handle="tg:1")])
    await route(world, [create(0, None, source, phone="+4930123456")])
    survivor = (await world.lead_of())[routed(oldest, 0).interaction_id]

    merges = []
    for contacts in ({"handle": "tg:1"}, {"phone": "+4930123456"}):
        outcome = await route(world, [create(0, "a@example.com", source, **contacts)])
        merges += [json.loads(e.body) for e in outcome.events if e.routing_key == "lead.merged"]
        assert json.loads(outcome.events[0].body)["sequence"] == 1  # a new interaction's

    assert [(m["lead_uuid"], m["sequence"]) for m in merges] == [(survivor, 1), (survivor, 2)]


CASES: list[Case] = [
    choice_follows_the_weights_and_the_seed,
    waits_when_nobody_is_free,
    a_close_gives_the_slot_to_the_oldest_waiting,
    a_close_frees_the_operator,
    closing_a_waiting_one_frees_nobody,
    closing_a_waiting_one_with_the_one_that_frees_the_slot,
    a_close_frees_the_slot_for_a_create_in_the_same_batch_after_older_waiting,
    manual_assignment_moves_the_slot_and_drains,
    manual_assignment_refusals,
    a_repeated_message_id_replays_its_first_event,
    a_repeated_close_replays_the_first_close,
    a_lead_is_known_by_any_of_its_contacts,
    contacts_of_several_leads_merge_them_into_the_oldest,
    commands_of_one_batch_sharing_a_contact_make_one_lead,
    a_sticky_source_sends_a_returning_lead_to_its_previous_operator,
    never_sticky_to_an_operator_who_is_full_or_no_longer_weighted,
    waiting_interactions_drain_by_priority_then_age,
    overdue_once_per_interaction_past_its_sources_sla,
    a_source_with_accept_timeout_offers_and_the_operator_accepts,
    an_expired_offer_goes_to_another_operator_and_never_back,
    an_accept_after_the_deadline_is_refused_before_the_timer_runs,
    closing_or_reassigning_an_offer_ends_it,
    each_interactions_events_are_numbered_from_one,
    offers_expiries_accepts_and_overdue_continue_the_numbers,
    lead_merged_events_are_numbered_per_surviving_lead,
]


def case_id(case: Case) -> str:
    return getattr(case, "__name__", repr(case))
