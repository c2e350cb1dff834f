"""Test-side AMQP: publish commands as a bot would, and await events and dead letters."""

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from messaging.topology import (
    ACCEPT_ROUTING_KEY,
    CLOSE_ROUTING_KEY,
    COMMANDS_EXCHANGE,
    CREATE_ROUTING_KEY,
    DEAD_QUEUE,
    EVENTS_EXCHANGE,
)


@dataclass
class Received:
    routing_key: str
    body: dict[str, Any]
    message: AbstractIncomingMessage

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})


class Inbox:
    """Messages from one queue, awaitable one by one (no sleeps: each `next` awaits a delivery)."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self._items: asyncio.Queue[Received] = asyncio.Queue()

    async def start(self) -> "Inbox":
        await self.queue.consume(self._on_message)
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            try:
                body = json.loads(message.body)
            except (ValueError, RecursionError):  # hostile bodies come back as dead letters
                body = {"_raw": message.body.decode(errors="replace")}
            self._items.put_nowait(Received(message.routing_key or "", body, message))

    async def next(self, within: float = 10.0) -> Received:
        return await asyncio.wait_for(self._items.get(), within)

    async def take(self, count: int, within: float = 20.0) -> list[Received]:
        async with asyncio.timeout(within):
            return [await self._items.get() for _ in range(count)]

    def pending(self) -> int:
        return self._items.qsize()


@dataclass
class Bot:
    """Publishes commands to the `interactions` exchange with publisher confirms."""

    channel: AbstractChannel

    async def create(
        self,
        email: str,
        source_id: int,
        payload: Any = None,
        *,
        message_id: str | None = None,
        **properties: Any,
    ) -> str:
        body = {"email": email, "source_id": source_id}
        if payload is not None:
            body["payload"] = payload
        message_id = message_id or uuid.uuid4().hex
        await self.raw(
            CREATE_ROUTING_KEY, json.dumps(body).encode(), message_id=message_id, **properties
        )
        return message_id

    async def close(self, interaction_id: int, **properties: Any) -> None:
        await self.raw(
            CLOSE_ROUTING_KEY, json.dumps({"interaction_id": interaction_id}).encode(), **properties
        )

    async def accept(self, interaction_id: int, operator_id: int, **properties: Any) -> None:
        body = {"interaction_id": interaction_id, "operator_id": operator_id}
        await self.raw(ACCEPT_ROUTING_KEY, json.dumps(body).encode(), **properties)

    async def raw(self, routing_key: str, body: bytes, **properties: Any) -> None:
        properties.setdefault("message_id", uuid.uuid4().hex)
        properties.setdefault("content_type", "application/json")
        exchange = await self.channel.get_exchange(COMMANDS_EXCHANGE)
        message = aio_pika.Message(
            body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties
        )
        await exchange.publish(message, routing_key)


async def events_inbox(channel: AbstractChannel, binding: str = "#") -> Inbox:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), binding)
    return await Inbox(queue).start()


async def dead_letter_inbox(channel: AbstractChannel) -> Inbox:
    queue = await channel.get_queue(DEAD_QUEUE)
    return await Inbox(queue).start()
