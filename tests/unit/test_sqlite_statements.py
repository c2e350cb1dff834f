"""The SQLite lane's compiled statements against SQLAlchemy: every statement's parameters are
bound, and its answers read, in the forms SQLAlchemy itself writes and reads on SQLite (the
lane converts values with its own faster functions), and every row type's fields are columns
of its table."""

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from db.models import Interaction, Lead, LeadContact, Operator, OutboxEvent
from db.routing_store.sqlite import (
    CompiledStatements,
    bind_converter,
    compile_statement,
    result_converter,
)
from db.statements import all_statements, interactions, leads, outbox
from db.statements.dialect import Listed
from db.types import StatusText, UTCDateTime, sqlite_time
from routing.facts import InteractionFacts, OperatorState, StoredEvent
from routing.identity import SHOWN_CONTACTS
from routing.rows import NewContact, NewInteraction, NewLead, OutboxRow
from schemas.events import InteractionStatus

MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=3)))
DIALECT = sqlite.dialect()
SAMPLES: list[Any] = [
    None, 0, 7, True, False, "text", "ü", MOMENT, datetime(5, 1, 2, tzinfo=UTC),
    InteractionStatus.OFFERED, "waiting", {"a": [1, 2.5, None, "ü"]}, [1, "x"], [3, 1, 2],
]  # fmt: skip


def columns(model: type) -> dict[str, Any]:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return {c.name: c.type for c in table.columns}


def sqlalchemy_bind(type_: Any, value: Any) -> Any:
    processor = type_._cached_bind_processor(DIALECT)
    return value if processor is None else processor(value)


def sqlalchemy_result(type_: Any, stored: Any) -> Any:
    processor = type_._cached_result_processor(DIALECT, None)
    return stored if processor is None else processor(stored)


def accepts(type_: Any, value: Any) -> bool:
    """Whether SQLAlchemy binds a value of this kind to a column of this type at all."""
    if isinstance(type_, Listed):
        return isinstance(value, list)  # the store always passes a list
    if isinstance(type_, UTCDateTime) and value is not None:
        return isinstance(value, datetime)
    if isinstance(type_, StatusText) and value is not None:
        return isinstance(value, str) and value in {s.value for s in InteractionStatus}
    if type_._cached_bind_processor(DIALECT) is None:  # bound as it is: plain values only
        return value is None or isinstance(value, int | str | float)
    try:
        sqlalchemy_bind(type_, value)
    except (TypeError, ValueError):
        return False
    return True


def bound_types() -> list[tuple[str, Any]]:
    found = []
    for statement in all_statements():
        compiled = statement.sql.compile(dialect=DIALECT)  # type: ignore[attr-defined]
        found += [(f"{statement.name}:{n}", b.type) for n, b in compiled.binds.items()]
    return found


@pytest.mark.parametrize(("where", "type_"), bound_types(), ids=lambda v: str(v))
def test_each_parameter_is_bound_as_sqlalchemy_binds_it(where: str, type_: Any) -> None:
    convert = bind_converter(type_)
    for value in SAMPLES:
        if accepts(type_, value):
            ours = value if convert is None else convert(value)
            assert ours == sqlalchemy_bind(type_, value), (where, value)
            assert ours is None or isinstance(ours, int | str | float)  # what sqlite3 binds fast


def test_each_answer_is_read_as_sqlalchemy_reads_it() -> None:
    stored = {
        UTCDateTime: [None, sqlite_time(MOMENT)],
        StatusText: [s.value for s in InteractionStatus],
    }
    for statement in all_statements():
        if not statement.returns_rows:
            continue
        for column in statement.sql.selected_columns:  # type: ignore[attr-defined]
            convert = result_converter(column.type)
            values = stored.get(type(column.type), [None, 0, 1, "x"])
            for value in values:
                if convert is None:
                    assert sqlalchemy_result(column.type, value) == value, statement.name
                else:
                    assert convert(value) == sqlalchemy_result(column.type, value)


def test_every_statement_compiles_with_all_its_parameters_in_its_text() -> None:
    compiled = CompiledStatements()
    assert len(compiled.by_statement) == len(list(all_statements()))


def test_an_insert_of_many_rows_repeats_the_values_of_one() -> None:
    insert = compile_statement(interactions.insert_interactions)
    text = insert.insert_sql(3)
    assert text.count("(?, ") == 3 and text.startswith("INSERT INTO interactions (id, ")


def test_every_row_field_is_a_column_of_its_table() -> None:
    interaction, outbox = columns(Interaction), columns(OutboxEvent)
    written = set(interactions.INSERT_COLUMNS)
    assert written <= interaction.keys()
    # set later: when closed, when found overdue, at its second event (the first is 1)
    assert interaction.keys() - written == {"closed_at", "overdue_at", "last_sequence"}
    assert set(OutboxRow._fields) <= outbox.keys()
    assert outbox.keys() - set(OutboxRow._fields) == {"id", "published_at"}
    shown = {f.name for f in fields(InteractionFacts)} - interaction.keys()
    assert shown == set(SHOWN_CONTACTS) and shown <= columns(Lead).keys()
    assert set(NewLead._fields) == columns(Lead).keys() - {"last_sequence"}  # 0 until a merge
    assert set(NewContact._fields) == columns(LeadContact).keys() - {"id"}
    assert {f.name for f in fields(OperatorState)} <= columns(Operator).keys()
    assert {f.name for f in fields(StoredEvent)} <= outbox.keys()


def test_new_interaction_values_land_under_their_columns() -> None:
    """The lane binds a row's values by the INSERT's placeholders, not by field order."""
    row = NewInteraction(
        "lead-uuid", 11, 22, InteractionStatus.WAITING, True, {"a": [1, "ü"]}, "m-1", "c-1",
        "r-1", MOMENT, MOMENT + timedelta(seconds=1), 7, MOMENT + timedelta(seconds=30),
    )  # fmt: skip
    compiled = compile_statement(interactions.insert_interactions)
    bound = dict(zip(inserted_columns(compiled.sql), compiled.bind((7, *row)), strict=True))
    types = columns(Interaction)
    expected = {"id": 7, "last_sequence": 1} | {  # its first event's number: the default
        name: sqlalchemy_bind(types[name], value)
        for name, value in zip(NewInteraction._fields, row, strict=True)
    }
    assert bound == expected
    assert bound["payload"] == json.dumps({"a": [1, "ü"]})


def test_outbox_row_values_land_under_their_columns() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    row = OutboxRow(
        "e-1", 7, "interaction.waiting", '{"x":1}', "c-1", None, MOMENT, traceparent, "owner-1"
    )
    compiled = compile_statement(outbox.insert_events)
    bound = dict(zip(inserted_columns(compiled.sql), compiled.bind(row), strict=True))
    types = columns(OutboxEvent)
    assert bound == {n: sqlalchemy_bind(types[n], v) for n, v in row._asdict().items()}
    assert bound["owner"] == "owner-1"


def test_a_new_lead_starts_its_merge_numbers_at_zero() -> None:
    """A column the rows leave out is bound its Python-side default, as SQLAlchemy would."""
    compiled = compile_statement(leads.insert_leads)
    row = NewLead("uuid-1", "a@example.com", None, None, MOMENT)
    bound = dict(zip(inserted_columns(compiled.sql), compiled.bind(row), strict=True))
    assert bound["last_sequence"] == 0 and bound["uuid"] == "uuid-1"


def inserted_columns(sql: str) -> list[str]:
    head = sql.partition(" VALUES ")[0]
    return [n.strip() for n in head.partition("(")[2].rstrip(")").split(",")]


def test_the_orm_and_the_sqlite3_lane_write_one_datetime_form() -> None:
    """`sqlite_time` and `UTCDateTime` share `SQLITE_DATETIME_FORMAT`: naive UTC text."""
    process = UTCDateTime()._cached_bind_processor(DIALECT)  # the ORM's full path
    assert process is not None
    assert process(MOMENT) == sqlite_time(MOMENT) == "2024-05-06 04:08:09.123456"
    assert sqlite_time(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02 00:00:00.000000"
