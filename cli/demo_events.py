"""Watching `interactions.events` for the demo's own interactions.

The demo subscribes before it publishes and counts each of its message_ids once it has a routing
result (the event's `message_id` is the inbound message's), so it waits for the worker's real
answers instead of sleeping and guessing.
"""

import asyncio
import json
from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage

from cli.distribution import Outcome

ROUTING_RESULTS = ("interaction.assigned", "interaction.waiting")


class RoutingWatcher:
    def __init__(self, expected: set[str], on_assigned: Callable[[int], None] | None) -> None:
        """`on_assigned(interaction_id)` runs once per newly assigned interaction of ours."""
        self.expected = expected
        self.on_assigned = on_assigned
        self.outcomes: dict[str, Outcome] = {}
        self.changed = asyncio.Event()

    @property
    def complete(self) -> bool:
        return len(self.outcomes) == len(self.expected)

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
