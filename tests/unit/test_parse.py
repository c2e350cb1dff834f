"""Inbound bodies: what is accepted, how it is normalised, and the one-line reason when not."""

import datetime
import json
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from messaging.lenient_strings import Undecodable, UnreadableTimestamp
from messaging.reply_to import ReplyToRefusal
from routing.commands import CloseRequest, CreateRequest, Envelope
from routing.outcomes import RefusalClass, Refused
from schemas.messages import PAYLOAD_LIMIT_BYTES, CreateInteraction
from worker.intake import Intake, RefusedDelivery, read_delivery
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


# -- The intake: one pass over a delivery's properties and headers (worker/intake.py) -----------

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def unreadable_timestamp() -> UnreadableTimestamp:
    stamp = UnreadableTimestamp(1970, 1, 1, tzinfo=datetime.UTC)
    stamp.raw = 99999999999999
    return stamp


def delivered(redelivered: bool = False, **properties: Any) -> Any:
    """What the intake reads of an aio-pika IncomingMessage."""
    fields: dict[str, Any] = dict.fromkeys(
        ("message_id", "correlation_id", "reply_to", "content_type", "content_encoding", "type",
         "app_id", "user_id", "timestamp"),
    )  # fmt: skip
    fields |= {"headers": None, "redelivered": redelivered}
    return SimpleNamespace(**(fields | properties))


def test_an_envelope_carries_every_property_the_log_line_and_events_need() -> None:
    message = delivered(
        message_id="m-1",
        correlation_id="c-1",
        reply_to="bot.replies",
        content_type="application/json; charset=utf-8",
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    )
    intake = read_delivery(message, delivery_limit=5)
    assert intake == Intake(
        Envelope("m-1", "c-1", "bot.replies", TRACEPARENT, "vendor=1"), suspect=False
    )
    assert intake.message_id == "m-1"
    assert intake.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert intake.reply_to_ignored is None and not intake.traceparent_ignored


def test_a_bare_delivery_is_an_empty_envelope() -> None:
    intake = read_delivery(delivered(), delivery_limit=5)
    assert intake == Intake(Envelope(), suspect=False)
    assert intake.message_id is None and intake.trace_id is None


def test_a_later_traceparent_version_is_read_as_version_00() -> None:
    later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"
    intake = read_delivery(delivered(headers={"traceparent": later}), 5)
    assert isinstance(intake, Intake)
    assert intake.envelope.traceparent == TRACEPARENT
    assert intake.trace_id == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize("bad", ["00-zz", b"\xff", 7, "00-" + "0" * 32 + "-b7ad6b7169203331-01"])
def test_a_traceparent_that_is_not_w3c_is_ignored_with_its_tracestate(bad: object) -> None:
    message = delivered(message_id="m-1", headers={"traceparent": bad, "tracestate": "v=1"})
    intake = read_delivery(message, 5)
    assert intake == Intake(Envelope("m-1"), suspect=False, traceparent_ignored=True)
    assert intake.trace_id is None


def test_a_tracestate_that_is_not_printable_ascii_is_dropped_alone() -> None:
    message = delivered(headers={"traceparent": TRACEPARENT, "tracestate": "v=\x01"})
    intake = read_delivery(message, 5)
    assert isinstance(intake, Intake)
    assert (intake.envelope.traceparent, intake.envelope.tracestate) == (TRACEPARENT, None)


@pytest.mark.parametrize(
    ("reply_to", "why"),
    [
        ("interactions.create", ReplyToRefusal.OWN_QUEUE),
        ("operators", ReplyToRefusal.OWN_QUEUE),
        ("", ReplyToRefusal.MALFORMED),
        ("amq.direct", ReplyToRefusal.MALFORMED),
        (
            "amq.rabbitmq.reply-to.g2AAAAAAAAAAAAAAAAAAAAAAAA==.AAAA",
            ReplyToRefusal.BROKER_WOULD_REFUSE,
        ),
    ],
)
def test_a_reply_to_the_worker_must_not_use_is_dropped_and_says_why(
    reply_to: str, why: ReplyToRefusal
) -> None:
    intake = read_delivery(delivered(message_id="m-1", reply_to=reply_to), 5)
    assert intake == Intake(Envelope("m-1"), suspect=False, reply_to_ignored=why)


@pytest.mark.parametrize(
    ("redelivered", "count", "suspect"),
    [(True, 5, True), (True, 4, False), (False, 99, False), (True, None, False)],
)
def test_the_suspect_status_comes_from_redelivery_and_delivery_count(
    redelivered: bool, count: int | None, suspect: bool
) -> None:
    headers = {} if count is None else {"x-delivery-count": count}
    intake = read_delivery(delivered(redelivered, headers=headers), delivery_limit=5)
    assert isinstance(intake, Intake) and intake.suspect is suspect


PROPERTY, CONTENT = RefusalClass.INVALID_PROPERTY, RefusalClass.CONTENT_TYPE


@pytest.mark.parametrize(
    ("properties", "reason", "kind"),
    [
        ({"message_id": "bad-\udcff"}, "message_id is not valid UTF-8", PROPERTY),
        ({"headers": {"x-\udcfe": 1}}, r"header name 'x-\\xfe' is not valid UTF-8", PROPERTY),
        (
            {"headers": {"x-deep": Undecodable(b"F", "nested deeper than 64 levels")}},
            "header 'x-deep' could not be decoded (nested deeper than 64 levels)",
            PROPERTY,
        ),
        ({"timestamp": unreadable_timestamp()}, "timestamp 99999999999999 is out of", PROPERTY),
        ({"correlation_id": "c\x00"}, "correlation_id contains the NUL character", PROPERTY),
        ({"reply_to": "r\x00"}, "reply_to contains the NUL character", PROPERTY),
        ({"content_type": "text/plain"}, "content_type 'text/plain' is not application/", CONTENT),
        ({"content_encoding": "gzip"}, "content_encoding 'gzip' is not supported", CONTENT),
    ],
)
def test_each_envelope_refusal_keeps_what_its_log_line_needs(
    properties: dict[str, Any], reason: str, kind: RefusalClass
) -> None:
    message = delivered(True, **({"message_id": "m-1"} | properties))
    message.headers = (message.headers or {}) | {"traceparent": TRACEPARENT, "x-delivery-count": 9}
    refused = read_delivery(message, delivery_limit=5)
    assert isinstance(refused, RefusedDelivery)
    assert reason in refused.reason and refused.kind is kind
    assert refused.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert refused.suspect
    assert refused.message_id == ("bad-\\xff" if "message_id" in properties else "m-1")


def test_a_property_of_an_unexpected_type_is_refused_never_raised() -> None:
    refused = read_delivery(delivered(message_id="m-1", headers=["not", "a", "table"]), 5)
    assert isinstance(refused, RefusedDelivery) and refused.kind is RefusalClass.INVALID_BODY
    assert refused.reason.startswith("could not read message: ")
    assert refused.message_id == "m-1" and refused.trace_id is None
