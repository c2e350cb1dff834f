"""lead contacts: leads known by e-mail, phone and channel handle; priority; sticky sources;
waiting SLA

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:20:00.000000

Every existing lead's e-mail becomes its first contact. `leads.email` stays as the lead's shown
e-mail (its first one), joined by `phone` and `handle`; uniqueness moves to the contacts, where
each (kind, value) belongs to exactly one lead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('email', 'phone', 'handle')", name=op.f("ck_lead_contacts_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["lead_uuid"],
            ["leads.uuid"],
            name=op.f("fk_lead_contacts_lead_uuid_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_contacts")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_lead_contacts_kind")),
    )
    op.create_index(op.f("ix_lead_contacts_lead_uuid"), "lead_contacts", ["lead_uuid"])
    op.execute(
        "INSERT INTO lead_contacts (lead_uuid, kind, value, created_at) "
        "SELECT uuid, 'email', email, created_at FROM leads ORDER BY created_at, uuid"
    )
    with op.batch_alter_table("leads") as batch_op:
        batch_op.drop_constraint(op.f("uq_leads_email"), type_="unique")
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=True)
        batch_op.add_column(sa.Column("phone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("handle", sa.String(length=200), nullable=True))
    op.add_column(
        "interactions",
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "sources",
        sa.Column("sticky", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("sources", sa.Column("max_wait_s", sa.Integer(), nullable=True))
    op.add_column(
        "interactions", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True)
    )
    _waiting_index(["source_id", "priority", "id"])
    op.add_column("outbox_events", sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    """Back to e-mail-only leads: leads without an e-mail cannot be kept, so refuse."""
    bind = op.get_bind()
    without_email = bind.execute(sa.text("SELECT count(*) FROM leads WHERE email IS NULL"))
    if without_email.scalar_one():
        raise RuntimeError("leads without an e-mail exist; 0001 cannot represent them")
    _waiting_index(["source_id", "id"])
    op.drop_column("outbox_events", "traceparent")
    op.drop_column("interactions", "overdue_at")
    op.drop_column("sources", "max_wait_s")
    op.drop_column("sources", "sticky")
    op.drop_column("interactions", "priority")
    with op.batch_alter_table("leads") as batch_op:
        batch_op.drop_column("handle")
        batch_op.drop_column("phone")
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_leads_email"), ["email"])
    op.drop_index(op.f("ix_lead_contacts_lead_uuid"), table_name="lead_contacts")
    op.drop_table("lead_contacts")


def _waiting_index(columns: list[str]) -> None:
    """The drain's index, over these columns, still only over waiting interactions."""
    op.drop_index("ix_interactions_waiting_source_id", table_name="interactions")
    waiting = sa.text("status = 'waiting'")
    op.create_index(
        "ix_interactions_waiting_source_id",
        "interactions",
        columns,
        sqlite_where=waiting,
        postgresql_where=waiting,
    )
