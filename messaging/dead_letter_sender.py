"""Dead letters sent so that none is lost: mandatory, confirmed, and kept until stored.

A letter is published `mandatory` to the `interactions.dlx` fanout with publisher confirms, so
the broker says whether a queue took it. Returned means `interactions.dead` is gone or unbound
(deleted by hand, by a policy, by a restore): it is declared again, as at start, and the letter
sent once more. If that fails too, `DeadLetterNotStored`: the caller must not ack the original.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from enum import Enum
from typing import cast

import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq import spec
from aiormq.exceptions import AMQPError, DeliveryError, PublishError

from messaging.dead_letter import Letter, bare_letter, build_letter
from messaging.lenient_strings import printable
from messaging.topology import DEAD_LETTER_EXCHANGE, DEAD_QUEUE, restore_dead_letter_queue

log = structlog.get_logger(__name__)


class LetterStored(Enum):
    AT_ONCE = "at_once"
    AFTER_RESTORE = "after_restore"  # returned first: interactions.dead was declared again


class DeadLetterNotStored(RuntimeError):
    """The broker returned the letter (no queue bound to `interactions.dlx`) or refused it,
    and declaring `interactions.dead` again did not help: the original must not be acked."""


class DeadLetterSender:
    def __init__(self, channel: AbstractChannel, exchange: AbstractExchange) -> None:
        self.channel = channel
        self.exchange = exchange
        # Letters in flight by message_id: aiormq matches a return to its publish by
        # message_id, so two letters with one id must not be in flight together.
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        # Declarations of interactions.dead so far: a batch's letters returned together
        # declare it once, not once each.
        self._restores = 0
        self._restoring = asyncio.Lock()

    async def send(self, original: AbstractIncomingMessage, reason: str) -> LetterStored:
        underlay = cast(aiormq.Channel, await self.channel.get_underlay_channel())
        letter = self._letter(original, reason, underlay.connection.connection_tune.frame_max)
        routing_key = original.routing_key or ""
        message_id = cast(str, letter.properties.message_id)
        async with self._one_per_id(message_id):
            restores = self._restores
            if await self._publish(underlay, routing_key, letter):
                return LetterStored.AT_ONCE
            log.warning(
                f"dead letter returned: no queue is bound to {DEAD_LETTER_EXCHANGE}; "
                f"declaring {DEAD_QUEUE} again",
                message_id=printable(original.message_id or "") or None,
            )
            try:
                await self._restore(since=restores)
            except (AMQPError, ConnectionError) as exc:
                raise DeadLetterNotStored(f"could not declare {DEAD_QUEUE}: {exc}") from exc
            if await self._publish(underlay, routing_key, letter):
                return LetterStored.AFTER_RESTORE
        raise DeadLetterNotStored(f"returned again after declaring {DEAD_QUEUE}")

    async def _restore(self, since: int) -> None:
        """Declare the queue again, unless that was done after this letter was sent."""
        async with self._restoring:
            if self._restores == since:
                await restore_dead_letter_queue(self.channel)
                self._restores += 1

    @staticmethod
    def _letter(original: AbstractIncomingMessage, reason: str, frame_max: int) -> Letter:
        """Whatever the original holds, a letter: the full one, or the body and reason only."""
        try:
            letter = build_letter(original, reason, frame_max)
        except Exception:
            log.exception("could not build the dead letter; sending the body and reason only")
            letter = bare_letter(original, reason)
        if not letter.properties.message_id:  # as aiormq would: it matches returns by this id
            letter.properties.message_id = uuid.uuid4().hex
        return letter

    async def _publish(self, underlay: aiormq.Channel, routing_key: str, letter: Letter) -> bool:
        """True once confirmed into a queue; False when returned; a nack raises."""
        try:
            confirmation = await underlay.basic_publish(
                letter.body,
                exchange=self.exchange.name,
                routing_key=routing_key,
                properties=letter.properties,
                mandatory=True,
                wait=False,
            )
        except PublishError:  # a channel opened with on_return_raises
            return False
        except DeliveryError as exc:
            raise DeadLetterNotStored(f"the broker refused the dead letter: {exc}") from exc
        return isinstance(confirmation, spec.Basic.Ack)

    @contextlib.asynccontextmanager
    async def _one_per_id(self, message_id: str) -> AsyncIterator[None]:
        previous = self._in_flight.get(message_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[message_id] = done
        try:
            if previous is not None:
                await asyncio.wait([previous])
            yield
        finally:
            done.set_result(None)
            if self._in_flight.get(message_id) is done:
                del self._in_flight[message_id]
