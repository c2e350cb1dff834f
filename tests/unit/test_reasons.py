"""Dead-letter reasons are one short line with no SQL and no secrets, whatever the error said."""

import sqlite3

from sqlalchemy.exc import DBAPIError, IntegrityError

from worker.reasons import MAX_REASON_CHARS, error_summary, one_line


def test_a_database_error_is_summarised_without_its_statement_or_parameters() -> None:
    orig = sqlite3.IntegrityError("UNIQUE constraint failed: interactions.message_id")
    exc = IntegrityError("INSERT INTO interactions (message_id) VALUES (?)", ("m-1",), orig)
    summary = error_summary(exc)
    assert summary == "IntegrityError: UNIQUE constraint failed: interactions.message_id"
    assert "INSERT" not in summary and "[SQL" not in str(summary)


def test_a_multi_line_driver_error_keeps_its_first_line() -> None:
    orig = Exception("value out of int32 range\nHINT: something\nDETAIL: more")
    exc = DBAPIError("SELECT 1 WHERE id = $1", (2**40,), orig)
    assert error_summary(exc) == "Exception: value out of int32 range"


def test_one_line_folds_control_characters_and_cuts() -> None:
    text = one_line("first\nsecond\r\n\tthird " + "x" * 1000)
    assert "\n" not in text and "\r" not in text and "\t" not in text
    assert text.startswith("first second third") and len(text) == MAX_REASON_CHARS


def test_one_line_masks_credentials_in_urls() -> None:
    text = one_line("cannot reach postgresql+asyncpg://app:s3cret@db:5432/leads")
    assert "s3cret" not in text and "postgresql+asyncpg://app:***@db:5432/leads" in text


def test_one_line_is_always_encodable() -> None:
    assert one_line("invalid email '\ud800@example.com'").encode("utf-8")
