"""OperatorCRUD: operators and their load counters.

`lock_states` is the one place load is read for a decision: on PostgreSQL it takes row locks in
id order (`FOR UPDATE`), so concurrent workers serialise on the operators they share and the
load limit holds exactly; on SQLite the transaction already holds the write lock.
"""

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Operator
from routing.facts import OperatorState


class OperatorCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        wanted = sorted(set(operator_ids))
        if not wanted:
            return {}
        stmt = (
            select(Operator.id, Operator.active, Operator.load_limit, Operator.current_load)
            .where(Operator.id.in_(wanted))
            .order_by(Operator.id)
            .with_for_update()
        )
        rows = await self.session.execute(stmt)
        return {row[0]: OperatorState(*row) for row in rows}

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        """current_load += delta for each operator, as one executemany."""
        params = [{"op_id": op, "delta": d} for op, d in deltas.items() if d]
        if not params:
            return
        table = Operator.__table__
        stmt = (
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("op_id"))
            .values(current_load=table.c.current_load + bindparam("delta"))
        )
        await self.session.execute(stmt, params)

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
