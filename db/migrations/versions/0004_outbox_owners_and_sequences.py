"""outbox owners and event sequences: one relay re-sends a stuck event; events are numbered

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 14:30:00.000000

`outbox_owners` holds one row per worker process with the lease it renews; `outbox_events.owner`
names the process that publishes the event, so other relays leave it alone while that lease
lasts. `interactions.last_sequence` and `leads.last_sequence` are the numbers of their latest
event (`sequence` in the events). Existing interactions start from the count of the events
the outbox holds for them, so the next one continues after the ones already sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS_SENT = (
    "(SELECT count(*) FROM outbox_events o WHERE o.interaction_id = interactions.id "
    "AND o.routing_key <> 'lead.merged')"
)


def upgrade() -> None:
    op.create_table(
        "outbox_owners",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_owners")),
    )
    op.add_column("outbox_events", sa.Column("owner", sa.String(length=36), nullable=True))
    op.add_column(
        "interactions",
        sa.Column("last_sequence", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column(
        "leads",
        sa.Column("last_sequence", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(f"UPDATE interactions SET last_sequence = {EVENTS_SENT} WHERE {EVENTS_SENT} > 1")


def downgrade() -> None:
    """Plain `DROP COLUMN` (SQLite 3.35+ has it): a batch rebuild of `interactions` would lose
    its partial indexes' WHERE."""
    for table, column in (
        ("leads", "last_sequence"),
        ("interactions", "last_sequence"),
        ("outbox_events", "owner"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("outbox_owners")
