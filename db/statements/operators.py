"""The `operators` statements of the routing store: loads are read under lock and written
back as deltas.

`lock_states` is the one place a load is read for a decision: on PostgreSQL it locks the rows
in id order, so concurrent workers serialise on the operators they share and the limit holds
exactly; on SQLite the transaction already holds the write lock.
"""

from dataclasses import fields
from typing import cast

from sqlalchemy import Table, select, update

from db.models import Operator
from db.statements.dialect import in_list
from db.statements.statement import Statement, int_param
from routing.facts import OperatorState

operators = cast(Table, Operator.__table__)
o = operators.c

lock_states = Statement(
    "operators.lock_states",
    select(*(o[f.name] for f in fields(OperatorState)))
    .where(in_list(o.id, "ids"))
    .order_by(o.id)
    .with_for_update(),
    ("ids",),
    returns_rows=True,
)

add_to_load = Statement(
    "operators.add_to_load",
    update(operators)
    .where(o.id == int_param("operator_id"))
    .values(current_load=o.current_load + int_param("delta")),
    ("delta", "operator_id"),
)
