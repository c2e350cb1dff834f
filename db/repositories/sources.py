"""SourceCRUD: the channels interactions come from."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Source


class SourceCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        identifier: str,
        description: str,
        *,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> Source:
        source = Source(
            identifier=identifier,
            description=description,
            sticky=sticky,
            max_wait_s=max_wait_s,
            accept_timeout_s=accept_timeout_s,
        )
        self.session.add(source)
        await self.session.flush()
        return source

    async def get_by_id(self, source_id: int) -> Source | None:
        return await self.session.get(Source, source_id)

    async def list_all(self) -> Sequence[Source]:
        return (await self.session.scalars(select(Source).order_by(Source.id))).all()

    async def get_by_identifier(self, identifier: str) -> Source | None:
        stmt = select(Source).where(Source.identifier == identifier)
        return (await self.session.scalars(stmt)).one_or_none()
