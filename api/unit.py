"""One request's unit of work: its session, and routing changes that publish after commit."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from api.models.common import NotFound
from api.publishing import publish_committed
from api.state import ApiState
from db.errors import is_transient
from db.models import Interaction
from db.repositories.interactions import InteractionCRUD
from db.retry import retry_transient
from db.routing_store.sessions import session_store
from messaging import tracing
from routing.outcomes import PendingEvent
from routing.router import Router

T = TypeVar("T")


class UnitOfWork:
    def __init__(
        self, state: ApiState, session: AsyncSession, traceparent: str | None = None
    ) -> None:
        self.state = state
        self.session = session
        self.traceparent = traceparent  # the request's valid W3C `traceparent`: spans' parent

    async def routed(self, work: Callable[[Router], Awaitable[T]]) -> T:
        """Run `work` in a transaction with the worker's Router, then publish its events.

        Every status or load change the API makes goes through this Router, so an HTTP close
        and an AMQP close are one code path. Lock timeouts and deadlocks against a worker are
        retried like the worker retries them; what still fails answers 503.
        """
        with tracing.span("leadrouter.api.change", traceparent=self.traceparent):
            result, events = await retry_transient(
                lambda: self._once(work),
                attempts=self.state.settings.db_retry_attempts,
                is_transient=is_transient,
                rng=self.state.rng,
            )
            await publish_committed(self.state, events)
        return result

    async def _once(self, work: Callable[[Router], Awaitable[T]]) -> tuple[T, list[PendingEvent]]:
        self.session.expunge_all()
        with tracing.span("leadrouter.transaction"):
            async with self.session.begin():
                router = Router(session_store(self.session), self.state.rng)
                result = await work(router)
        return result, router.outcome.events

    async def interaction_detail(self, interaction_id: int) -> Interaction:
        """Read fresh after a change: bulk updates by the router bypass the identity map."""
        self.session.expire_all()
        async with self.session.begin():
            interaction = await InteractionCRUD(self.session).get_detail(interaction_id)
        if interaction is None:
            raise NotFound(f"interaction {interaction_id} not found")
        return interaction
