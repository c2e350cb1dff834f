"""The `interactions` statements of the routing store (and `expired_offers`, their history).

Statuses are written as literals, not parameters: SQLite uses a partial index only for a
WHERE that says its own condition (`status = 'waiting'`, `status = 'offered'`).
"""

from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Table, and_, false, func, insert, literal_column, null, or_, select, update

from db.models import ExpiredOffer, Interaction, Lead, Source
from db.statements.dialect import in_list, reserved_ids, seconds_before
from db.statements.statement import Statement, int_param, now_param
from db.types import StatusText
from routing.facts import InteractionFacts
from routing.identity import SHOWN_CONTACTS
from routing.rows import NewInteraction
from schemas.events import InteractionStatus

interactions = cast(Table, Interaction.__table__)
expired_offers = cast(Table, ExpiredOffer.__table__)
leads = cast(Table, Lead.__table__)
sources = cast(Table, Source.__table__)
i = interactions.c


def status_is(status: InteractionStatus) -> Any:
    return literal_column(f"'{status.value}'", StatusText())


WAITING, ASSIGNED, CLOSED, OFFERED = (
    status_is(InteractionStatus.WAITING),
    status_is(InteractionStatus.ASSIGNED),
    status_is(InteractionStatus.CLOSED),
    status_is(InteractionStatus.OFFERED),
)
ABOVE_ANY_PRIORITY = 10  # priorities are 0..9: a drain cursor before the first waiting one

# What an event is built from: `InteractionFacts`'s fields, in order (the interaction's own
# columns, then its lead's shown contacts, then its `last_sequence`).
FACT_COLUMNS = tuple(
    (leads.c if f.name in SHOWN_CONTACTS else i)[f.name] for f in fields(InteractionFacts)
)
_FACTS = select(*FACT_COLUMNS).join_from(interactions, leads, leads.c.uuid == i.lead_uuid)

facts = Statement(
    "interactions.facts", _FACTS.where(in_list(i.id, "ids")), ("ids",), returns_rows=True
)
# Locked in id order (PostgreSQL; SQLite's transaction holds the write lock already): an
# overdue sweep numbers a waiting interaction's event holding only its row.
facts_locked = Statement(
    "interactions.facts_locked",
    _FACTS.where(in_list(i.id, "ids")).order_by(i.id).with_for_update(of=interactions),
    ("ids",),
    returns_rows=True,
)

next_waiting = Statement(
    "interactions.next_waiting",
    _FACTS.where(
        i.status == WAITING,
        in_list(i.source_id, "source_ids"),
        or_(
            i.priority < int_param("priority"),
            and_(i.priority == int_param("priority"), i.id > int_param("after_id")),
        ),
    )
    .order_by(i.priority.desc(), i.id)
    .limit(int_param("limit"))
    .with_for_update(of=interactions),  # against a racing close
    ("source_ids", "priority", "after_id", "limit"),
    returns_rows=True,
)

# Driven by the sources with an SLA (few; none: nothing is read) through the index of waiting
# interactions per source, not by a scan of every interaction in id order.
_WITH_SLA = select(sources.c.id).where(sources.c.max_wait_s.is_not(None))
_MAX_WAIT = select(sources.c.max_wait_s).where(sources.c.id == i.source_id).scalar_subquery()
overdue_waiting = Statement(
    "interactions.overdue_waiting",
    _FACTS.where(
        i.status == WAITING,
        i.source_id.in_(_WITH_SLA),
        i.overdue_at.is_(None),
        i.created_at < seconds_before("now", _MAX_WAIT),
    )
    .order_by(i.id)
    .limit(int_param("limit"))
    .with_for_update(of=interactions, skip_locked=True),  # another worker is marking them
    ("now", "limit"),
    returns_rows=True,
)

due_offers = Statement(
    "interactions.due_offers",
    _FACTS.where(i.status == OFFERED, i.offer_expires_at <= now_param())
    .order_by(i.offer_expires_at, i.id)
    .limit(int_param("limit")),
    ("now", "limit"),
    returns_rows=True,
)

offer_deadlines = Statement(
    "interactions.offer_deadlines",
    select(i.id, i.offer_expires_at).where(
        in_list(i.id, "ids"), i.status == OFFERED, i.offer_expires_at.is_not(None)
    ),
    ("ids",),
    returns_rows=True,
)

ids_by_message_id = Statement(
    "interactions.ids_by_message_id",
    select(i.message_id, i.id).where(in_list(i.message_id, "message_ids")),
    ("message_ids",),
    returns_rows=True,
)

last_operators = Statement(
    "interactions.last_operators",
    select(i.lead_uuid, i.operator_id).where(
        i.id.in_(
            select(func.max(i.id))
            .where(in_list(i.lead_uuid, "lead_uuids"))
            .group_by(i.lead_uuid)
            .scalar_subquery()
        )
    ),
    ("lead_uuids",),
    returns_rows=True,
)

reserve_ids = Statement(
    "interactions.reserve_ids", reserved_ids(i.id, "steps"), ("steps",), returns_rows=True
)

INSERT_COLUMNS = ("id", *NewInteraction._fields)
insert_interactions = Statement(
    "interactions.insert", insert(interactions), INSERT_COLUMNS, inserts_rows=True
)

set_overdue = Statement(
    "interactions.set_overdue",
    update(interactions)
    .where(in_list(i.id, "ids"), i.overdue_at.is_(None))
    .values(overdue_at=now_param()),
    ("ids", "now"),
)

set_closed = Statement(
    "interactions.set_closed",
    update(interactions)
    .where(in_list(i.id, "ids"))
    .values(status=CLOSED, is_active=false(), closed_at=now_param(), offer_expires_at=null()),
    ("ids", "now"),
)

# The `sequence` of each interaction's latest event; its first (1) is the column's default.
set_sequence = Statement(
    "interactions.set_sequence",
    update(interactions)
    .where(i.id == int_param("interaction_id"))
    .values(last_sequence=int_param("last_sequence")),
    ("interaction_id", "last_sequence"),
)

set_assigned = Statement(
    "interactions.set_assigned",
    update(interactions)
    .where(i.id == int_param("interaction_id"))
    .values(
        operator_id=int_param("operator_id"),
        status=ASSIGNED,
        assigned_at=now_param(),
        offer_expires_at=null(),
    ),
    ("interaction_id", "operator_id", "now"),
)

set_offered = Statement(
    "interactions.set_offered",
    update(interactions)
    .where(i.id == int_param("interaction_id"))
    .values(
        operator_id=int_param("operator_id"),
        status=OFFERED,
        assigned_at=now_param(),
        offer_expires_at=now_param("expires_at"),
    ),
    ("interaction_id", "operator_id", "now", "expires_at"),
)

withdraw_offers = Statement(
    "interactions.withdraw_offers",
    update(interactions)
    .where(in_list(i.id, "ids"))
    .values(operator_id=null(), status=WAITING, assigned_at=null(), offer_expires_at=null()),
    ("ids",),
)

EXPIRED_COLUMNS = ("interaction_id", "operator_id", "expired_at")
insert_expired_offers = Statement(
    "expired_offers.insert", insert(expired_offers), EXPIRED_COLUMNS, inserts_rows=True
)

expired_operators = Statement(
    "expired_offers.operators",
    select(expired_offers.c.interaction_id, expired_offers.c.operator_id).where(
        in_list(expired_offers.c.interaction_id, "ids")
    ),
    ("ids",),
    returns_rows=True,
)
