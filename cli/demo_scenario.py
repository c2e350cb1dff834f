"""`leadrouter demo --scenario contact-centre`: the routing policies, each seen happening.

Against a running worker, on any database: it adds two operators (load limit 1 each) and two
sources of its own, named after this run, then plays four short scenes and prints every event
they caused as a table:

1. stickiness: a lead writes twice on the sticky chat source and reaches the same operator;
2. waiting SLA: with both operators busy, two chats wait past `max_wait_s` (2 s): overdue;
3. priority: the urgent chat, sent after the ordinary one, gets the first freed operator;
4. offers: a call is offered on the phone source (`accept_timeout_s` 2 s), nobody accepts, the
   offer expires and goes to the other operator, who accepts it.

Every interaction it opened is closed at the end, and its operators are deactivated, so a
later `leadrouter demo` routes nothing to them (and leaves its sources out: their identifiers
start with `contact-centre-`).
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.demo_setup import SCENARIO_PREFIX
from cli.table import render_table
from db.repositories.operators import OperatorCRUD
from db.repositories.sources import SourceCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from messaging import nodes
from messaging.topology import (
    ACCEPT_ROUTING_KEY,
    CLOSE_ROUTING_KEY,
    COMMANDS_EXCHANGE,
    CREATE_ROUTING_KEY,
    EVENTS_EXCHANGE,
)

MAX_WAIT_S = 2
ACCEPT_TIMEOUT_S = 2
SCENE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Cast:
    """What the scenario set up: its sources and operators, by role."""

    run: str
    chat: int  # sticky, max_wait_s
    phone: int  # accept_timeout_s
    operators: dict[int, str]  # id -> name


@dataclass
class EventLog:
    """The scenario's events in arrival order, awaited by condition (no sleeps)."""

    sources: set[int]
    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        event = json.loads(message.body)
        if event.get("source_id") in self.sources:
            async with self.changed:
                self.rows.append((time.monotonic() - self.started, event))
                self.changed.notify_all()

    async def wait_for(self, what: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event (of those so far or to come) that matches."""

        def found() -> dict[str, Any] | None:
            return next((event for _, event in self.rows if match(event)), None)

        try:
            async with asyncio.timeout(SCENE_TIMEOUT_S), self.changed:
                await self.changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            raise ScenarioError(f"no {what} within {SCENE_TIMEOUT_S:g}s") from None
        event = found()
        assert event is not None
        return event


class ScenarioError(RuntimeError):
    """The worker did not do what a scene expects (in time); printed as one line."""


async def set_up(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    run = uuid.uuid4().hex[:6]
    async with sessions() as session, session.begin():
        olga = await OperatorCRUD(session).create(f"Olga ({run})", 1, True)
        pavel = await OperatorCRUD(session).create(f"Pavel ({run})", 1, True)
        sources = SourceCRUD(session)
        chat = await sources.create(
            f"{SCENARIO_PREFIX}{run}-chat", "sticky chat", sticky=True, max_wait_s=MAX_WAIT_S
        )
        phone = await sources.create(
            f"{SCENARIO_PREFIX}{run}-phone", "phone", accept_timeout_s=ACCEPT_TIMEOUT_S
        )
        both = {olga.id: 50, pavel.id: 50}
        weights = SourceOperatorSettingCRUD(session)
        await weights.replace_source_weights(chat.id, both)
        await weights.replace_source_weights(phone.id, both)
    return Cast(run, chat.id, phone.id, {olga.id: olga.name, pavel.id: pavel.name})


async def tear_down(sessions: async_sessionmaker[AsyncSession], cast: Cast) -> None:
    """Its operators go inactive: they take nothing from a later demo or from real sources.

    Rows stay (interactions refer to them); the plain demo ignores the sources by their prefix
    and the operators by their weights on them (`cli/demo_setup.py`).
    """
    async with sessions() as session, session.begin():
        operators = OperatorCRUD(session)
        for operator_id in cast.operators:
            operator = await operators.get_for_update(operator_id)
            if operator is not None:
                operator.active = False


async def play(amqp_url: str, cast: Cast) -> list[list[object]]:
    """The four scenes; returns the event table's rows."""
    connection = await nodes.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        log = EventLog({cast.chat, cast.phone})
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), "interaction.*")
        await queue.consume(log.on_message, no_ack=True)
        scenes = Scenes(await channel.get_exchange(COMMANDS_EXCHANGE), log, cast)
        await scenes.stickiness()
        await scenes.overdue_and_priority()
        await scenes.offer_expires()
        await scenes.close_all()
    return table_rows(log, cast)


class Scenes:
    def __init__(self, commands: AbstractExchange, log: EventLog, cast: Cast) -> None:
        self.commands, self.log, self.cast = commands, log, cast
        self.open: set[int] = set()

    async def create(self, who: str, source: int, priority: int = 0) -> dict[str, Any]:
        """Publish a create and return its routing event (assigned, waiting or offered)."""
        message_id = f"cc-{self.cast.run}-{uuid.uuid4().hex[:8]}"
        body = {"email": f"{who}-{self.cast.run}@example.com", "source_id": source}
        await self._publish(CREATE_ROUTING_KEY, body | {"priority": priority}, message_id)
        event = await self.log.wait_for(
            f"routing of {who}'s interaction", lambda e: e.get("message_id") == message_id
        )
        self.open.add(int(event["interaction_id"]))
        return event

    async def close(self, interaction_id: int) -> None:
        await self._publish(CLOSE_ROUTING_KEY, {"interaction_id": interaction_id})
        await self._event("interaction.closed", interaction_id)
        self.open.discard(interaction_id)

    async def stickiness(self) -> None:
        first = await self.create("anna", self.cast.chat)
        await self.close(first["interaction_id"])
        again = await self.create("anna", self.cast.chat)
        if (again["operator_id"], again["reason"]) != (first["operator_id"], "sticky"):
            raise ScenarioError("anna's second chat did not go to her previous operator")
        await self.close(again["interaction_id"])

    async def overdue_and_priority(self) -> None:
        busy = [await self.create(who, self.cast.chat) for who in ("boris", "clara")]
        ordinary = await self.create("dmitry", self.cast.chat, priority=0)
        urgent = await self.create("elena", self.cast.chat, priority=9)
        for waiting in (ordinary, urgent):
            await self._event("interaction.overdue", waiting["interaction_id"])
        await self.close(busy[0]["interaction_id"])
        drained = await self._event("interaction.assigned", urgent["interaction_id"])
        if drained["reason"] != "drain":
            raise ScenarioError("the urgent chat was not drained first")
        await self.close(busy[1]["interaction_id"])
        await self._event("interaction.assigned", ordinary["interaction_id"])
        for event in (ordinary, urgent):
            await self.close(event["interaction_id"])

    async def offer_expires(self) -> None:
        offered = await self.create("fedor", self.cast.phone)
        interaction_id = offered["interaction_id"]
        await self._event("interaction.offer_expired", interaction_id)
        second = await self._event(
            "interaction.offered", interaction_id, lambda e: e["reason"] == "drain"
        )
        body = {"interaction_id": interaction_id, "operator_id": second["operator_id"]}
        await self._publish(ACCEPT_ROUTING_KEY, body)
        await self._event("interaction.accepted", interaction_id)
        await self.close(interaction_id)

    async def close_all(self) -> None:
        for interaction_id in sorted(self.open):
            await self.close(interaction_id)

    async def _event(
        self,
        event_type: str,
        interaction_id: int,
        also: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> dict[str, Any]:
        return await self.log.wait_for(
            f"{event_type} of interaction {interaction_id}",
            lambda e: e["type"] == event_type and e["interaction_id"] == interaction_id and also(e),
        )

    async def _publish(
        self, routing_key: str, body: dict[str, Any], message_id: str | None = None
    ) -> None:
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id or uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            app_id="leadrouter-demo",
        )
        await self.commands.publish(message, routing_key)


def table_rows(log: EventLog, cast: Cast) -> list[list[object]]:
    sources = {cast.chat: "chat (sticky, SLA 2 s)", cast.phone: "phone (offers, 2 s)"}
    return [
        [
            f"{at:5.1f}",
            str(event["type"]).removeprefix("interaction."),
            event["interaction_id"],
            str(event["email"]).split("-")[0],
            sources[event["source_id"]],
            event["priority"],
            cast.operators.get(event["operator_id"], "-"),
            event["reason"] or "",
        ]
        for at, event in log.rows
    ]


def render(rows: list[list[object]]) -> str:
    headers = ["t (s)", "event", "id", "lead", "source", "priority", "operator", "reason"]
    return render_table(headers, rows)
