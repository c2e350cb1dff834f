"""The `leads` and `lead_contacts` statements of the routing store."""

from typing import cast

from sqlalchemy import Table, delete, insert, literal_column, select, union_all, update

from db.models import Interaction, Lead, LeadContact
from db.statements.dialect import in_list
from db.statements.statement import Statement, int_param, text_param
from routing.rows import NewContact, NewLead
from schemas.contacts import ContactKind

leads = cast(Table, Lead.__table__)
contacts = cast(Table, LeadContact.__table__)
interactions = cast(Table, Interaction.__table__)
lead, contact = leads.c, contacts.c

# Bound per kind (`values_email`, …): each part is one range of the unique (kind, value)
# index. A row-value IN of (kind, value) pairs made PostgreSQL plan far worse, and an OR of
# the parts cost SQLite twice as much as this UNION ALL of contact ids (bench/README.md).
KIND_PARAMS = tuple(f"values_{kind.value}" for kind in ContactKind)
_MATCHING = union_all(
    *(
        select(contact.id).where(
            contact.kind == literal_column(f"'{kind.value}'"), in_list(contact.value, param)
        )
        for kind, param in zip(ContactKind, KIND_PARAMS, strict=True)
    )
)
_OWNERS = (
    select(
        contact.kind, contact.value, lead.uuid, lead.created_at, lead.email, lead.phone, lead.handle
    )
    .join_from(contacts, leads, lead.uuid == contact.lead_uuid)
    .where(contact.id.in_(_MATCHING))
    .order_by(lead.uuid)  # the order leads are locked in
)
leads_of = Statement("leads.of_contacts", _OWNERS, KIND_PARAMS, returns_rows=True)
leads_of_locked = Statement(
    "leads.of_contacts_locked", _OWNERS.with_for_update(of=leads), KIND_PARAMS, returns_rows=True
)

insert_leads = Statement("leads.insert", insert(leads), NewLead._fields, inserts_rows=True)
insert_contacts = Statement(
    "lead_contacts.insert", insert(contacts), NewContact._fields, inserts_rows=True
)

show_contacts = Statement(
    "leads.show_contacts",
    update(leads)
    .where(lead.uuid == text_param("lead_uuid"))
    .values(email=text_param("email_"), phone=text_param("phone_"), handle=text_param("handle_")),
    ("email_", "phone_", "handle_", "lead_uuid"),
)

# A merge moves the merged leads' contacts and interactions to the survivor, then deletes them.
move_contacts = Statement(
    "lead_contacts.move",
    update(contacts)
    .where(contact.lead_uuid == text_param("merged"))
    .values(lead_uuid=text_param("survivor")),
    ("survivor", "merged"),
)
move_interactions = Statement(
    "interactions.move_to_lead",
    update(interactions)
    .where(interactions.c.lead_uuid == text_param("merged"))
    .values(lead_uuid=text_param("survivor")),
    ("survivor", "merged"),
)
delete_leads = Statement(
    "leads.delete", delete(leads).where(in_list(lead.uuid, "uuids")), ("uuids",)
)

# A lead's `lead.merged` events are numbered by `last_sequence`: advanced per merge, then read.
# Two statements, not an UPDATE … RETURNING: SQLite cannot read one as a subquery, and
# SQLAlchemy runs no UPDATE … RETURNING as executemany.
advance_sequence = Statement(
    "leads.advance_sequence",
    update(leads)
    .where(lead.uuid == text_param("lead_uuid"))
    .values(last_sequence=lead.last_sequence + int_param("count")),
    ("lead_uuid", "count"),
)
sequences = Statement(
    "leads.sequences",
    select(lead.uuid, lead.last_sequence).where(in_list(lead.uuid, "uuids")),
    ("uuids",),
    returns_rows=True,
)
