"""The routing statements' row locks as each dialect says them: PostgreSQL locks the rows
(in a fixed order, so two transactions cannot deadlock on them); SQLite has no row locks, and
its transactions hold the write lock from their BEGIN IMMEDIATE instead."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from db.statements import interactions


def text(statement: Any, dialect: Any) -> str:
    return " ".join(str(statement.sql.compile(dialect=dialect)).split())


def test_facts_locked_reads_in_id_order_for_update_of_interactions_on_postgresql() -> None:
    locked = text(interactions.facts_locked, postgresql.dialect())
    assert locked.endswith("ORDER BY interactions.id FOR UPDATE OF interactions")
    assert "FOR UPDATE" not in text(interactions.facts, postgresql.dialect())


def test_facts_locked_is_the_plain_read_on_sqlite() -> None:
    locked = text(interactions.facts_locked, sqlite.dialect())
    assert "FOR UPDATE" not in locked
    assert locked == text(interactions.facts, sqlite.dialect()) + " ORDER BY interactions.id"


def test_every_read_of_facts_ends_with_the_last_sequence() -> None:
    """`InteractionFacts`'s last field: what the next event's `sequence` counts on from."""
    reads = ("facts", "facts_locked", "next_waiting", "overdue_waiting", "due_offers")
    for name in reads:
        columns = list(getattr(interactions, name).sql.selected_columns)
        assert str(columns[-1]) == "interactions.last_sequence", name
