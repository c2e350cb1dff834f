"""Watching `interactions.events` for the demo's own interactions.

The demo subscribes before it publishes and counts each of its message_ids once it has a routing
result (the event's `message_id` is the inbound message's), so it waits for the worker's real
answers instead of sleeping and guessing.
"""

import asyncio
import json
from collections.abc import Callable, Iterable

from aio_pika.abc import AbstractIncomingMessage

from cli.distribution import Outcome

# Every first answer the worker can give: an operator (assigned, or offered on a source with
# accept_timeout_s, then accepted), or a place in the queue.
ROUTING_RESULTS = (
    "interaction.assigned",
    "interaction.offered",
    "interaction.accepted",
    "interaction.waiting",
)


class RoutingWatcher:
    def __init__(self, expected: Iterable[str], on_assigned: Callable[[int], None] | None) -> None:
        """`on_assigned(interaction_id)` runs once per interaction of ours that got an operator
        (assigned or offered)."""
        self.expected = dict.fromkeys(expected)  # ordered, for `unanswered`
        self.on_assigned = on_assigned
        self.outcomes: dict[str, Outcome] = {}
        self.changed = asyncio.Event()

    @property
    def complete(self) -> bool:
        return len(self.outcomes) == len(self.expected)

    def unanswered(self) -> list[str]:
        """The message_ids still without a routing event, in publishing order."""
        return [m for m in self.expected if m not in self.outcomes]

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        event = json.loads(message.body)
        message_id = event.get("message_id")
        if message_id not in self.expected or event.get("type") not in ROUTING_RESULTS:
            return
        known = self.outcomes.get(message_id)
        if known is not None and known.operator_id is not None:
            return  # a re-sent event (same event_id) or a late duplicate: already counted
        outcome = Outcome(int(event["source_id"]), event.get("operator_id"))
        self.outcomes[message_id] = outcome
        if outcome.operator_id is not None and self.on_assigned is not None:
            self.on_assigned(int(event["interaction_id"]))
        self.changed.set()
