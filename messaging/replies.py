"""Reply copies of events (`reply_to`): best effort, on a connection of their own.

The broker judges a reply's routing key when it arrives, and some names make it close the
channel or, for a direct reply-to name it cannot map to a node, the whole connection (541).
So replies never share a connection with the events, dead letters or deliveries: a refused
reply costs that reply (and the replies in flight with it), one log line each and a count,
and nothing retries it. The connection is opened at the first reply and again after a loss.
A reply is sent after its event was confirmed; the batch never waits for it.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq import spec

from messaging import nodes
from messaging.connection_loss import describe, loss_cause
from messaging.lenient_strings import printable
from messaging.publisher import publish_confirmed
from messaging.reply_to import ReplyToRefusal, reply_to_refusal

log = structlog.get_logger(__name__)
# Replies awaiting their confirm; past this the next ones are dropped (counted), so a broker
# that stops confirming cannot make them grow without bound.
MAX_IN_FLIGHT = 10_000
REPLY_TIMEOUT_S = 30.0
# After a failed connect, replies are dropped (counted) for this long before the next try.
REOPEN_PAUSE_S = 1.0

Ignored = Callable[[ReplyToRefusal], None]
Failed = Callable[[str], None]  # a bounded cause: messaging.connection_loss.CAUSES or "backlog"
Lost = Callable[[str], None]


class ReplySender:
    def __init__(
        self,
        amqp_url: str,
        *,
        label: str | None = None,
        on_ignored: Ignored,
        on_failed: Failed,
        on_connection_lost: Lost,
    ) -> None:
        self.amqp_url = amqp_url
        self.label = label
        self.on_ignored = on_ignored
        self.on_failed = on_failed
        self.on_connection_lost = on_connection_lost
        self.connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._opening = asyncio.Lock()
        self._closing = False
        self._not_before = 0.0
        self._in_flight: set[asyncio.Task[None]] = set()

    def send(self, reply_to: str, body: bytes, properties: spec.Basic.Properties) -> None:
        """Start the reply and return at once; whatever becomes of it is logged and counted."""
        if (refusal := reply_to_refusal(reply_to)) is not None:
            # Checked when the command came in; a row stored before that check existed ends here.
            log.warning("reply_to ignored", reply_to=printable(reply_to), reason=refusal.value)
            self.on_ignored(refusal)
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT or self._closing:
            self._failed(reply_to, "backlog", "too many replies awaiting the broker")
            return
        task = asyncio.create_task(self._send(reply_to, body, properties))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, reply_to: str, body: bytes, properties: spec.Basic.Properties) -> None:
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                channel = await self._open_channel()
                await publish_confirmed(channel, "", reply_to, body, properties)
        except Exception as exc:
            self._failed(reply_to, loss_cause(exc), describe(exc))

    def _failed(self, reply_to: str, cause: str, error: str) -> None:
        log.warning(
            "reply copy not delivered", reply_to=printable(reply_to), cause=cause, error=error
        )
        self.on_failed(cause)

    async def _open_channel(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._opening:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            if time.monotonic() < self._not_before:
                raise ConnectionError("reply connection unavailable; retrying shortly")
            try:
                if self.connection is None or self.connection.is_closed:
                    self.connection = await nodes.connect(self.amqp_url, label=self.label)
                    self.connection.close_callbacks.add(self._lost)
                self._channel = await self.connection.channel(publisher_confirms=True)
            except Exception:
                self._not_before = time.monotonic() + REOPEN_PAUSE_S
                raise
            return self._channel

    def _lost(self, sender: object, *reason: object) -> None:
        if sender is self.connection:  # the next reply opens a new one
            self.connection, self._channel = None, None
        if self._closing:
            return
        error = reason[0] if reason else None
        cause = loss_cause(error)
        log.warning(
            "broker connection lost", connection="reply", cause=cause, error=describe(error)
        )
        self.on_connection_lost(cause)

    async def close(self) -> None:
        """Let the replies in flight finish (briefly), then close the connection."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=2.0)
        self._closing = True
        for task in list(self._in_flight):
            task.cancel()
        if self.connection is not None and not self.connection.is_closed:
            with contextlib.suppress(Exception):
                await self.connection.close()
