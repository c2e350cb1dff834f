"""OperatorCRUD: operators as the API manages them. Their loads are read under lock and
changed only by the routing store (`db/statements/operators.py`)."""

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Operator


class OperatorCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, operator_id: int) -> Operator | None:
        return await self.session.get(Operator, operator_id)

    async def list_all(self) -> Sequence[Operator]:
        return (await self.session.scalars(select(Operator).order_by(Operator.id))).all()

    async def create(self, name: str, load_limit: int, active: bool) -> Operator:
        operator = Operator(name=name, load_limit=load_limit, active=active, current_load=0)
        self.session.add(operator)
        await self.session.flush()
        return operator

    async def get_for_update(self, operator_id: int) -> Operator | None:
        """The operator row, locked as the router locks it, so a change and a routing serialise."""
        stmt = select(Operator).where(Operator.id == operator_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete(self, operator_id: int) -> None:
        """Its weights go with it (ON DELETE CASCADE); closed interactions keep a NULL operator."""
        await self.session.execute(delete(Operator).where(Operator.id == operator_id))

    async def existing_ids(self, operator_ids: Iterable[int]) -> set[int]:
        wanted = set(operator_ids)
        if not wanted:
            return set()
        stmt = select(Operator.id).where(Operator.id.in_(wanted))
        return set((await self.session.scalars(stmt)).all())
