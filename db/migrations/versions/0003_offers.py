"""offers: interactions offered to an operator until accepted or expired

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 13:10:00.000000

A source with `accept_timeout_s` offers its interactions first (`status` `offered`, counted in
the operator's load, `offer_expires_at` set); `expired_offers` remembers whose offer of an
interaction expired, so it is never offered to them again. The status CHECK gains `offered`;
SQLite rebuilds the table for that, so the partial indexes on the status are made again after.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_CHECK = "ck_interactions_status_known"
WAITING_INDEX = "ix_interactions_waiting_source_id"
OFFERED_INDEX = "ix_interactions_offered_expires_at"


def upgrade() -> None:
    op.add_column("sources", sa.Column("accept_timeout_s", sa.Integer(), nullable=True))
    _rebuild_interactions("status IN ('assigned', 'waiting', 'closed', 'offered')", offers=True)
    op.create_table(
        "expired_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        _cascading_reference("interaction_id", "interactions"),
        _cascading_reference("operator_id", "operators"),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expired_offers")),
    )
    op.create_index("ix_expired_offers_interaction_id", "expired_offers", ["interaction_id"])


def downgrade() -> None:
    """Back to immediate assignment: open offers become assignments to their operator (who
    already counts them in its load)."""
    op.execute("UPDATE interactions SET status = 'assigned' WHERE status = 'offered'")
    op.drop_index("ix_expired_offers_interaction_id", table_name="expired_offers")
    op.drop_table("expired_offers")
    _rebuild_interactions("status IN ('assigned', 'waiting', 'closed')", offers=False)
    op.drop_column("sources", "accept_timeout_s")


def _cascading_reference(column: str, table: str) -> sa.Column[int]:
    """`column` referring to `table`.id, deleted with the row it refers to."""
    name = op.f(f"fk_expired_offers_{column}_{table}")
    reference = sa.ForeignKey(f"{table}.id", name=name, ondelete="CASCADE")
    return sa.Column(column, sa.Integer(), reference, nullable=False)


def _rebuild_interactions(status_check: str, *, offers: bool) -> None:
    """Replace the status CHECK (and add or drop `offer_expires_at`). The partial indexes are
    dropped first and made again after: SQLite's table rebuild would not carry their WHERE."""
    op.drop_index(WAITING_INDEX, table_name="interactions")
    if not offers:
        op.drop_index(OFFERED_INDEX, table_name="interactions")
    with op.batch_alter_table("interactions") as batch_op:
        batch_op.drop_constraint(op.f(STATUS_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(STATUS_CHECK), sa.text(status_check))
        if offers:
            batch_op.add_column(
                sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True)
            )
        else:
            batch_op.drop_column("offer_expires_at")
    waiting = sa.text("status = 'waiting'")
    op.create_index(
        WAITING_INDEX,
        "interactions",
        ["source_id", "priority", "id"],
        sqlite_where=waiting,
        postgresql_where=waiting,
    )
    if offers:
        offered = sa.text("status = 'offered'")
        op.create_index(
            OFFERED_INDEX,
            "interactions",
            ["offer_expires_at"],
            sqlite_where=offered,
            postgresql_where=offered,
        )
