"""The sqlite3 store's rows against the models: its column lists come from the row types, its
hand-written value tuples (the hot path) must put each value under its column, in the form
the ORM would have written."""

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import JSON, Boolean, Table
from sqlalchemy.dialects import sqlite

from db.models import Interaction, Lead, LeadContact, Operator, OutboxEvent
from db.routing_store.sqlite import (
    INTERACTION_COLUMNS,
    OUTBOX_COLUMNS,
    interaction_values,
    outbox_values,
)
from db.types import StatusText, UTCDateTime, sqlite_time
from routing.facts import InteractionFacts, OperatorState, StoredEvent
from routing.identity import SHOWN_CONTACTS
from routing.rows import NewContact, NewInteraction, NewLead, OutboxRow
from schemas.events import InteractionStatus

MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=3)))


def columns(model: type) -> dict[str, object]:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return {c.name: c.type for c in table.columns}


def stored_form(column_type: object, value: object) -> object:
    """What the ORM writes on SQLite for `value` in a column of this type."""
    if value is None:
        return None
    if isinstance(column_type, UTCDateTime):
        assert isinstance(value, datetime)
        return sqlite_time(value)
    if isinstance(column_type, JSON):
        return json.dumps(value)
    if isinstance(column_type, StatusText):
        return InteractionStatus(str(value)).value
    if isinstance(column_type, Boolean):
        return int(bool(value))
    return value


def test_every_row_field_is_a_column_of_its_table() -> None:
    interaction, outbox = columns(Interaction), columns(OutboxEvent)
    assert set(INTERACTION_COLUMNS) <= interaction.keys()
    # set later: when closed, when found overdue, at its second event (the first is 1)
    later = {"closed_at", "overdue_at", "last_sequence"}
    assert interaction.keys() - set(INTERACTION_COLUMNS) == later
    assert set(OUTBOX_COLUMNS) <= outbox.keys()
    assert outbox.keys() - set(OUTBOX_COLUMNS) == {"id", "published_at"}
    shown = {f.name for f in fields(InteractionFacts)} - interaction.keys()
    assert shown == set(SHOWN_CONTACTS) and shown <= columns(Lead).keys()
    assert set(NewLead._fields) == columns(Lead).keys() - {"last_sequence"}  # 0 until a merge
    assert set(NewContact._fields) == columns(LeadContact).keys() - {"id"}
    assert {f.name for f in fields(OperatorState)} <= columns(Operator).keys()
    assert {f.name for f in fields(StoredEvent)} <= outbox.keys()


def test_interaction_values_put_each_value_under_its_column() -> None:
    row = NewInteraction(
        "lead-uuid", 11, 22, InteractionStatus.WAITING, True, {"a": [1, "ü"]}, "m-1", "c-1",
        "r-1", MOMENT, MOMENT + timedelta(seconds=1), 7, MOMENT + timedelta(seconds=30),
    )  # fmt: skip
    values = interaction_values([7], [row])
    types = columns(Interaction)
    expected = {"id": 7} | {
        name: stored_form(types[name], value)
        for name, value in zip(NewInteraction._fields, row, strict=True)
    }
    assert dict(zip(INTERACTION_COLUMNS, values, strict=True)) == expected
    assert {type(v) for v in values} <= {int, str, type(None)}  # what sqlite3 binds fastest


def test_outbox_values_put_each_value_under_its_column() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    row = OutboxRow(
        "e-1", 7, "interaction.waiting", '{"x":1}', "c-1", None, MOMENT, traceparent, "owner-1"
    )
    types = columns(OutboxEvent)
    expected = {n: stored_form(types[n], v) for n, v in zip(OutboxRow._fields, row, strict=True)}
    assert dict(zip(OUTBOX_COLUMNS, outbox_values([row]), strict=True)) == expected


def test_the_orm_and_the_sqlite3_store_write_one_datetime_form() -> None:
    """`sqlite_time` and `UTCDateTime` share `SQLITE_DATETIME_FORMAT`: naive UTC text."""
    process = UTCDateTime()._cached_bind_processor(sqlite.dialect())  # the ORM's full path
    assert process is not None
    assert process(MOMENT) == sqlite_time(MOMENT) == "2024-05-06 04:08:09.123456"
    assert sqlite_time(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02 00:00:00.000000"
