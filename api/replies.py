"""Waiting for a command's outcome: `POST /interactions?wait=S` answers with the interaction.

The API publishes the command with `reply_to` naming a queue of its own and `correlation_id`
its message id; the worker sends the command's first event there (the contract's reply), and
the waiting request is woken by it. No polling, and nothing new in the worker.
"""

import asyncio
import json
import uuid
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

log = structlog.get_logger(__name__)
# Not `amq.gen-…`: a robust connection re-declares the queue by name after a reconnect, and
# names starting with `amq.` are the broker's to give.
QUEUE_PREFIX = "leadrouter.api.replies."


class ReplyInbox:
    """One exclusive, auto-deleted queue per API process; futures keyed by correlation id."""

    def __init__(self) -> None:
        self.queue_name = QUEUE_PREFIX + uuid.uuid4().hex
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)

    def expect(self, correlation_id: str) -> "asyncio.Future[dict[str, Any]]":
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        return future

    def forget(self, correlation_id: str) -> None:
        self._waiting.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is None or future.done():
            return  # a late reply, after its request gave up
        try:
            future.set_result(json.loads(message.body))
        except ValueError:
            log.warning("reply is not JSON; ignored", correlation_id=message.correlation_id)
