"""The routing store's statements, each written once in SQLAlchemy Core: one module per table.

`db/routing_store/` runs them: through SQLAlchemy's async sessions (PostgreSQL, and the API
on any database), or as text compiled once for sqlite3 on the SQLite worker's own thread.
What differs between the dialects is in `dialect.py`.
"""

from collections.abc import Iterator

from db.statements import interactions, leads, operators, outbox, sources
from db.statements.statement import Statement

MODULES = (interactions, leads, operators, outbox, sources)


def all_statements() -> Iterator[Statement]:
    """Every statement of the modules above, for compiling them all at start-up."""
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, Statement):
                yield value
