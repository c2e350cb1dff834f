"""Which database errors a routing transaction retries: the races between workers, no more."""

import pytest
from sqlalchemy.exc import IntegrityError

from db.errors import is_transient


def integrity_error(message: str) -> IntegrityError:
    return IntegrityError("INSERT ...", {}, Exception(message))


@pytest.mark.parametrize(
    "message",
    [
        'duplicate key value violates unique constraint "uq_interactions_message_id"',
        'duplicate key value violates unique constraint "uq_lead_contacts_kind_value"',
        # an unlocked read's lead, merged away by another worker before the insert
        'insert or update on table "interactions" violates foreign key constraint '
        '"fk_interactions_lead_uuid_leads"',
        # a merge deleting a lead another worker's insert has just referred to
        'update or delete on table "leads" violates foreign key constraint '
        '"fk_interactions_lead_uuid_leads" on table "interactions"',
    ],
)
def test_races_between_workers_are_retried(message: str) -> None:
    assert is_transient(integrity_error(message))


@pytest.mark.parametrize(
    "message",
    [
        'insert or update on table "interactions" violates foreign key constraint '
        '"fk_interactions_source_id_sources"',
        'new row for relation "operators" violates check constraint '
        '"ck_operators_current_load_non_negative"',
        # names lead_uuid, but no retry can fill it in
        'null value in column "lead_uuid" of relation "interactions" violates not-null constraint',
    ],
)
def test_other_integrity_errors_are_permanent(message: str) -> None:
    assert not is_transient(integrity_error(message))
