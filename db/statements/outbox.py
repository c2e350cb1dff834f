"""The `outbox_events` statements of the routing store: events stored with the change they
report, and marked once the broker confirmed them."""

from dataclasses import fields
from typing import cast

from sqlalchemy import Table, func, insert, select, update

from db.models import OutboxEvent
from db.statements.dialect import in_list
from db.statements.statement import Statement, now_param, text_param
from routing.facts import StoredEvent
from routing.rows import OutboxRow

outbox = cast(Table, OutboxEvent.__table__)
e = outbox.c
_STORED = tuple(e[f.name] for f in fields(StoredEvent))

insert_events = Statement("outbox.insert", insert(outbox), OutboxRow._fields, inserts_rows=True)

# Per interaction its first event: what a repeated message_id gets again.
first_events = Statement(
    "outbox.first_events",
    select(*_STORED).where(
        e.id.in_(
            select(func.min(e.id))
            .where(in_list(e.interaction_id, "ids"))
            .group_by(e.interaction_id)
            .scalar_subquery()
        )
    ),
    ("ids",),
    returns_rows=True,
)

# Per interaction its first event of one type: what a repeated close or accept gets again.
first_events_of_type = Statement(
    "outbox.first_events_of_type",
    select(*_STORED).where(
        e.id.in_(
            select(func.min(e.id))
            .where(in_list(e.interaction_id, "ids"), e.routing_key == text_param("routing_key"))
            .group_by(e.interaction_id)
            .scalar_subquery()
        )
    ),
    ("ids", "routing_key"),
    returns_rows=True,
)

record_published = Statement(
    "outbox.record_published",
    update(outbox)
    .where(in_list(e.event_id, "event_ids"), e.published_at.is_(None))
    .values(published_at=now_param()),
    ("event_ids", "now"),
)
