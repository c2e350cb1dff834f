"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 14:41:34.058525
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status = 'waiting'"
UNPUBLISHED = "published_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        _timestamp("created_at"),
        _primary_key("leads", "uuid"),
        _unique("leads", "email"),
    )
    _create_with_id(
        "operators",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("load_limit", sa.Integer(), nullable=False),
        sa.Column("current_load", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("created_at"),
        _check("operators", "current_load_non_negative", "current_load >= 0"),
        _check("operators", "load_limit_non_negative", "load_limit >= 0"),
    )
    _create_with_id(
        "sources",
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _timestamp("created_at"),
        unique="identifier",
    )
    _create_with_id(
        "interactions",
        sa.Column("lead_uuid", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        *_reply_address(),
        _timestamp("created_at"),
        _timestamp("assigned_at", nullable=True),
        _timestamp("closed_at", nullable=True),
        _check("interactions", "status_known", "status IN ('assigned', 'waiting', 'closed')"),
        _foreign_key("interactions", "lead_uuid", "leads.uuid"),
        _foreign_key("interactions", "operator_id", "operators.id", ondelete="SET NULL"),
        _foreign_key("interactions", "source_id", "sources.id"),
        unique="message_id",
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index("ix_interactions_lead_uuid", ["lead_uuid"], unique=False)
        batch_op.create_index(
            "ix_interactions_operator_id_status", ["operator_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_interactions_waiting_source_id",
            ["source_id", "id"],
            unique=False,
            **_only_where(WAITING),
        )

    _create_with_id(
        "source_operator_settings",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        _check("source_operator_settings", "weight_range", "weight BETWEEN 1 AND 100"),
        _foreign_key("source_operator_settings", "operator_id", "operators.id", ondelete="CASCADE"),
        _foreign_key("source_operator_settings", "source_id", "sources.id", ondelete="CASCADE"),
        sa.UniqueConstraint("source_id", "operator_id", name="uq_source_operator"),
    )
    with op.batch_alter_table("source_operator_settings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_source_operator_settings_operator_id", ["operator_id"], unique=False
        )

    _create_with_id(
        "outbox_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("routing_key", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        *_reply_address(),
        _timestamp("created_at"),
        _timestamp("published_at", nullable=True),
        _foreign_key("outbox_events", "interaction_id", "interactions.id", ondelete="CASCADE"),
        unique="event_id",
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_events_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_events_unpublished", ["id"], unique=False, **_only_where(UNPUBLISHED)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_unpublished", **_only_where(UNPUBLISHED))
        batch_op.drop_index(batch_op.f("ix_outbox_events_interaction_id"))

    op.drop_table("outbox_events")
    with op.batch_alter_table("source_operator_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_source_operator_settings_operator_id")

    op.drop_table("source_operator_settings")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_waiting_source_id", **_only_where(WAITING))
        batch_op.drop_index("ix_interactions_operator_id_status")
        batch_op.drop_index("ix_interactions_lead_uuid")

    op.drop_table("interactions")
    op.drop_table("sources")
    op.drop_table("operators")
    op.drop_table("leads")


# The helpers below write what this revision wrote out by hand, names included (the models'
# naming convention): they belong to this revision and never change with the models.


def _create_with_id(table: str, *elements: sa.schema.SchemaItem, unique: str | None = None) -> None:
    """A table keyed by an integer `id` (every one but leads); the primary key leads its DDL
    wherever it stands in the arguments. `unique` names the one column a table's rows are
    known by besides the id, its constraint the last one written, as this revision wrote it."""
    id_column = sa.Column("id", sa.Integer(), nullable=False)
    uniques = [] if unique is None else [_unique(table, unique)]
    op.create_table(table, id_column, *elements, *uniques, _primary_key(table, "id"))


def _timestamp(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _reply_address() -> tuple[sa.Column[Any], sa.Column[Any]]:
    """Where a command asked its result to go: kept on the interaction and on each event."""
    return (
        sa.Column("correlation_id", sa.String(length=255), nullable=True),
        sa.Column("reply_to", sa.String(length=255), nullable=True),
    )


def _primary_key(table: str, column: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(column, name=op.f(f"pk_{table}"))


def _unique(table: str, column: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(column, name=op.f(f"uq_{table}_{column}"))


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _foreign_key(
    table: str, column: str, referred: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    referred_table = referred.split(".")[0]
    name = op.f(f"fk_{table}_{column}_{referred_table}")
    return sa.ForeignKeyConstraint([column], [referred], name=name, ondelete=ondelete)


def _only_where(condition: str) -> dict[str, Any]:
    """A partial index: the same condition on both dialects."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}
