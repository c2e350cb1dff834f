"""The event stream as the compose tests read it: the reliability tests' EventLog (deduplicated by
event_id, a re-sent event counted as a duplicate), indexed as events arrive by the command's
message_id, so waiting for thousands of events re-checks a counter, not the whole log."""

from collections import Counter
from dataclasses import dataclass, field

from aio_pika.abc import AbstractChannel

from messaging.topology import EVENTS_EXCHANGE
from tests.reliability.helpers import Event, EventLog


def prefix_of(message_id: str) -> str:
    return message_id.split("-", 1)[0]


@dataclass
class CommandEvents(EventLog):
    """Also: message_id -> the interaction ids its events name, and commands seen per prefix."""

    interactions_of: dict[str, set[int]] = field(default_factory=dict)
    commands: Counter[str] = field(default_factory=Counter)

    async def record(self, event: Event) -> None:
        message_id = event.body.get("message_id")
        if message_id and "interaction_id" in event.body:
            ids = self.interactions_of.setdefault(str(message_id), set())
            if not ids:
                self.commands[prefix_of(str(message_id))] += 1
            ids.add(event.interaction_id)
        await super().record(event)

    def of(self, prefix: str) -> dict[str, set[int]]:
        return {m: i for m, i in self.interactions_of.items() if prefix_of(m) == prefix}


async def command_events(channel: AbstractChannel) -> CommandEvents:
    """Fed by an exclusive queue of the test's own, bound to `interactions.events` with '#'."""
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")
    events = CommandEvents()
    await events.consume(queue)
    return events
