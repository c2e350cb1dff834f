"""Inbound bodies: what is accepted, how it is normalised, and the one-line reason when not."""

import json

import pytest
from pydantic import ValidationError

from routing.commands import CloseRequest, CreateRequest, Envelope
from routing.outcomes import Refused
from schemas.messages import PAYLOAD_LIMIT_BYTES, CreateInteraction
from worker.parse import envelope_refusal, is_suspect, parse_command


def parse_create(body: object) -> CreateRequest | CloseRequest | Refused:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_command("create", 0, raw, Envelope("m-1"))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Client@Example.com", "client@example.com"),
        ("  client@example.com\n", "client@example.com"),
        ("CLIENT@EXAMPLE.COM", "client@example.com"),
    ],
)
def test_email_is_trimmed_and_lower_cased(given: str, stored: str) -> None:
    assert CreateInteraction(email=given, source_id=1).email == stored


@pytest.mark.parametrize("bad", ["", "not-an-email", "a@", "@example.com", "a b@example.com"])
def test_invalid_email_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        CreateInteraction(email=bad, source_id=1)


def test_good_create_keeps_payload_and_envelope() -> None:
    parsed = parse_create({"email": "a@example.com", "source_id": 3, "payload": [1, {"x": None}]})
    assert isinstance(parsed, CreateRequest)
    assert parsed.command.payload == [1, {"x": None}]
    assert parsed.envelope.message_id == "m-1"


def test_payload_is_optional() -> None:
    parsed = parse_create({"email": "a@example.com", "source_id": 3})
    assert isinstance(parsed, CreateRequest) and parsed.command.payload is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        ({"source_id": 1}, "body: at least one of email, phone, handle is required"),
        ({"email": "a@example.com", "source_id": "x"}, "source_id"),
        ({"email": "a@example.com", "source_id": 0}, "source_id"),
        ({"email": "nope", "source_id": 1}, "email"),
        ([1, 2], "invalid CreateInteraction"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body: object, reason: str) -> None:
    parsed = parse_create(body)
    assert isinstance(parsed, Refused)
    assert reason in parsed.reason
    assert "\n" not in parsed.reason


def test_payload_over_64_kib_is_refused_and_at_the_limit_accepted() -> None:
    overhead = len(json.dumps("").encode())
    at_limit = "x" * (PAYLOAD_LIMIT_BYTES - overhead)
    ok = parse_create({"email": "a@example.com", "source_id": 1, "payload": at_limit})
    assert isinstance(ok, CreateRequest)
    too_big = parse_create({"email": "a@example.com", "source_id": 1, "payload": at_limit + "x"})
    assert isinstance(too_big, Refused) and "payload is 65537 bytes" in too_big.reason


def test_huge_body_is_refused_before_parsing() -> None:
    parsed = parse_create(b"[" + b"1," * 100_000 + b"1]")
    assert isinstance(parsed, Refused) and "over the" in parsed.reason


def test_close_needs_a_positive_interaction_id() -> None:
    good = parse_command("close", 4, b'{"interaction_id": 42}', Envelope())
    assert isinstance(good, CloseRequest) and good.command.interaction_id == 42 and good.key == 4
    bad = parse_command("close", 4, b'{"interaction_id": "x"}', Envelope())
    assert isinstance(bad, Refused) and "interaction_id" in bad.reason


def test_a_redelivery_past_the_delivery_limit_is_a_suspect_not_a_refusal() -> None:
    assert not is_suspect({}, True, 5)
    assert not is_suspect({"x-delivery-count": 4}, True, 5)
    assert is_suspect({"x-delivery-count": 5}, True, 5)
    assert not is_suspect({"x-delivery-count": True}, True, 1)
    assert envelope_refusal({}, {"x-delivery-count": 500}) is None


def test_a_first_delivery_is_never_a_suspect_whatever_its_headers_say() -> None:
    assert not is_suspect({"x-delivery-count": 99}, False, 5)


@pytest.mark.parametrize("payload", [{"t": "a\x00b"}, {"k\x00": 1}, ["x\\\x00"]])
def test_nul_characters_are_refused_on_every_database(payload: object) -> None:
    parsed = parse_create({"email": "a@example.com", "source_id": 1, "payload": payload})
    assert isinstance(parsed, Refused) and "NUL character" in parsed.reason


def test_the_text_backslash_u0000_is_not_a_nul() -> None:
    parsed = parse_create({"email": "a@example.com", "source_id": 1, "payload": "\\u0000"})
    assert isinstance(parsed, CreateRequest) and parsed.command.payload == "\\u0000"


def test_a_local_phone_uses_the_default_region_and_is_refused_without_one() -> None:
    body = json.dumps({"phone": "8 (999) 123-45-67", "source_id": 1}).encode()
    with_region = parse_command("create", 0, body, Envelope("m-1"), "RU")
    without = parse_command("create", 0, body, Envelope("m-1"), None)
    assert isinstance(with_region, CreateRequest)
    assert with_region.command.phone == "+79991234567"
    assert isinstance(without, Refused) and "DEFAULT_PHONE_REGION" in without.reason


@pytest.mark.parametrize(
    ("contacts", "stored"),
    [
        ({"phone": "+7 999 123-45-67"}, {"phone": "+79991234567"}),
        ({"handle": "  telegram:123456789 "}, {"handle": "telegram:123456789"}),
        (
            {"email": "A@Example.com", "handle": "user123@telegram"},
            {"email": "a@example.com", "handle": "user123@telegram"},
        ),
    ],
)
def test_any_contact_identifies_the_lead(contacts: dict[str, str], stored: dict[str, str]) -> None:
    parsed = parse_create({**contacts, "source_id": 1})
    assert isinstance(parsed, CreateRequest)
    assert {c.kind.value: c.value for c in parsed.command.contacts} == stored


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"phone": "+1 000", "source_id": 1}, "phone: is not a valid phone number"),
        ({"phone": "call me", "source_id": 1}, "phone: has no country code"),
        ({"handle": "", "source_id": 1}, "handle"),
        ({"handle": "x" * 201, "source_id": 1}, "handle"),
        ({"email": "a@example.com", "source_id": 1, "priority": 10}, "priority"),
        ({"email": "a@example.com", "source_id": 1, "priority": True}, "priority"),
    ],
)
def test_bad_contacts_and_priorities_are_refused(body: object, reason: str) -> None:
    parsed = parse_create(body)
    assert isinstance(parsed, Refused) and reason in parsed.reason, parsed
