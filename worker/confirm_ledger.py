"""The worker's publish-confirm ledger: which of its events still need recording as published.

An event is *in flight* from its batch's commit until it is *recorded* (`published_at` set in
the outbox). On the way the broker *confirms* it; confirmed events are recorded in the next
batch's transaction, so recording costs no commit of its own (or, when the worker is idle, in
one transaction of their own). Until recorded the outbox relay skips them: re-sending an event
whose confirm is on its way would only make a duplicate.

Pure bookkeeping, no I/O and no locks: the worker's loop, its settling tasks and the relay all
run on one event loop, and each method is a single step between awaits.
"""

from collections.abc import Iterable, Set


class ConfirmLedger:
    def __init__(self) -> None:
        self._in_flight: set[str] = set()  # routed here, not yet recorded (confirmed or not)
        self._confirmed: list[str] = []  # confirmed by the broker, waiting for a transaction

    @property
    def in_flight(self) -> Set[str]:
        """Routed here and not yet recorded: the relay skips these. A live view, not a copy."""
        return self._in_flight

    @property
    def has_confirmed(self) -> bool:
        """Whether confirmed events wait for a transaction to record them."""
        return bool(self._confirmed)

    def routed(self, event_ids: Iterable[str]) -> None:
        """Their batch committed; their publishes are about to start."""
        self._in_flight.update(event_ids)

    def confirmed(self, event_ids: Iterable[str]) -> None:
        """The broker has them: record them in the next transaction."""
        self._confirmed.extend(event_ids)

    def take_confirmed(self) -> list[str]:
        """The confirmed events for the transaction about to run, which must then report back
        with `recorded` or `not_recorded`. Until then they stay in flight, and confirms that
        come in meanwhile wait for the transaction after."""
        taken, self._confirmed = self._confirmed, []
        return taken

    def recorded(self, event_ids: Iterable[str]) -> None:
        """Their `published_at` is committed: done, and nothing for the relay."""
        self._in_flight.difference_update(event_ids)

    def not_recorded(self, event_ids: Iterable[str]) -> None:
        """The transaction that was to record them did not: record them in a later one."""
        self._confirmed.extend(event_ids)

    def abandoned(self, event_ids: Iterable[str]) -> None:
        """Given up here (their batch failed, or recording them failed while idle): the
        relay re-sends them later, with the same `event_id`."""
        self._in_flight.difference_update(event_ids)
