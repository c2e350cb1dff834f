"""One request's unit of work: its session, and routing changes that publish after commit."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from api.models.common import NotFound
from api.publishing import publish_committed
from api.state import ApiState
from db.models import Interaction
from db.repositories.interactions import InteractionCRUD
from worker.routing import Router


class UnitOfWork:
    def __init__(self, state: ApiState, session: AsyncSession) -> None:
        self.state = state
        self.session = session

    @asynccontextmanager
    async def routing(self) -> AsyncIterator[Router]:
        """A transaction with the worker's Router on it; its events are published once committed.

        Every status or load change the API makes goes through this Router, so an HTTP close
        and an AMQP close are one code path.
        """
        async with self.session.begin():
            router = Router(self.session, self.state.rng)
            yield router
        await publish_committed(self.state, router.outcome.events)

    async def interaction_detail(self, interaction_id: int) -> Interaction:
        """Read fresh after a change: bulk updates by the router bypass the identity map."""
        self.session.expire_all()
        async with self.session.begin():
            interaction = await InteractionCRUD(self.session).get_detail(interaction_id)
        if interaction is None:
            raise NotFound(f"interaction {interaction_id} not found")
        return interaction
