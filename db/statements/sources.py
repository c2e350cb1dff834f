"""The `sources` and `source_operator_settings` (weights) statements of the routing store."""

from typing import cast

from sqlalchemy import Table, select

from db.models import Source, SourceOperatorSetting
from db.statements.dialect import in_list
from db.statements.statement import Statement

sources = cast(Table, Source.__table__)
weights = cast(Table, SourceOperatorSetting.__table__)
s, w = sources.c, weights.c

sources_served_by = Statement(
    "weights.sources_served_by",
    select(w.source_id).where(in_list(w.operator_id, "operator_ids")),
    ("operator_ids",),
    returns_rows=True,
)

# Which sources exist, which are sticky, which offer first, and their weights: one LEFT
# JOIN, each row `(source_id, sticky, accept_timeout_s, operator_id, weight)`
# (`routing.facts.source_rules` reads them).
source_rules = Statement(
    "sources.rules",
    select(s.id, s.sticky, s.accept_timeout_s, w.operator_id, w.weight)
    .outerjoin(weights, w.source_id == s.id)
    .where(in_list(s.id, "source_ids")),
    ("source_ids",),
    returns_rows=True,
)
