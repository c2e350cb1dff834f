"""A dead letter is readable by any client and fits the frame; what it changed, it says."""

from types import SimpleNamespace
from typing import Any

from pamqp import commands

from messaging import lenient_strings
from messaging.dead_letter import (
    CONTENT_HEADER_OVERHEAD,
    alteration,
    bare_letter,
    build_letter,
)

FRAME_MAX = 4096  # RabbitMQ's smallest


def incoming(**properties: Any) -> Any:
    """What the builder reads of an aio-pika IncomingMessage."""
    fields: dict[str, Any] = dict.fromkeys(
        ("message_id", "correlation_id", "reply_to", "content_encoding", "type", "app_id"
         , "timestamp", "priority"),
    )  # fmt: skip
    fields |= {"content_type": "application/json", "headers": {}, "body": b"{}"}
    fields |= {"routing_key": "interaction.create", "exchange": "interactions"}
    return SimpleNamespace(**(fields | properties))


def content_header_bytes(properties: commands.Basic.Properties) -> int:
    return len(properties.marshal()) + CONTENT_HEADER_OVERHEAD


def test_a_plain_letter_keeps_everything_and_says_why() -> None:
    letter = build_letter(incoming(message_id="m-1", headers={"x-bot": "tg"}), "why", FRAME_MAX)
    assert letter.properties.message_id == "m-1"
    assert letter.properties.headers == {
        "x-bot": "tg",
        "x-error": "why",
        "x-original-routing-key": "interaction.create",
        "x-original-exchange": "interactions",
    }
    assert not letter.altered and alteration(letter.properties.headers) is None


def test_the_biggest_headers_are_dropped_until_the_letter_fits() -> None:
    headers = {"x-big": "x" * 3500, "x-mid": "y" * 900, "x-small": "z"}
    letter = build_letter(incoming(headers=headers), "body is not JSON", FRAME_MAX)
    kept = letter.properties.headers
    assert content_header_bytes(letter.properties) <= FRAME_MAX
    assert "x-big" not in kept and kept["x-mid"] == "y" * 900 and kept["x-small"] == "z"
    assert kept["x-dropped-headers"] == 1
    assert kept["x-error"] == (
        "body is not JSON; 1 original header(s) dropped to fit the frame size: x-big"
    )
    assert alteration(kept) == "1 header(s) were dropped to fit the frame size"


def test_a_publisher_cannot_forge_or_crowd_out_the_bookkeeping() -> None:
    headers = {"x-error": "forged", "x-original-routing-key": "#", "x-original-foo": "f" * 5000}
    letter = build_letter(incoming(headers=headers), "why", FRAME_MAX)
    kept = letter.properties.headers
    assert kept["x-original-routing-key"] == "interaction.create"
    assert kept["x-error"].startswith("why; 1 original header(s) dropped")
    assert "x-original-foo" not in kept


def test_non_utf8_short_strings_are_escaped_with_their_bytes_aside() -> None:
    lenient_strings.install()
    original = incoming(
        message_id="bad-\udcff\udcfe",
        reply_to="r-\udcc3",
        headers={"x-\udcff": {"in-\udcfe": 1}, "long": b"\xff"},
    )
    letter = build_letter(original, "message_id is not valid UTF-8", FRAME_MAX)
    properties, kept = letter.properties, letter.properties.headers
    assert (properties.message_id, properties.reply_to) == ("bad-\\xff\\xfe", "r-\\xc3")
    assert kept["x-original-message-id"] == b"bad-\xff\xfe"
    assert kept["x-original-reply-to"] == b"r-\xc3"
    assert kept["x-\\xff"] == {"in-\\xfe": 1}
    assert kept["x-original-header-names"] == [b"x-\xff", b"in-\xfe"]
    assert kept["long"] == bytearray(b"\xff")  # a long string that was not UTF-8: a byte array
    assert kept["x-error"].startswith(
        "message_id is not valid UTF-8; header names escaped, original bytes in "
        "x-original-header-names; escaped in this letter, original bytes in "
        "x-original-message-id, x-original-reply-to"
    )
    assert letter.altered
    assert alteration(kept) == "message_id, reply_to was not UTF-8 (escaped in the letter)"
    # what a stock client (strict UTF-8, no shim) decodes: every string is UTF-8
    assert strictly_utf8([getattr(properties, n) for n in properties.__slots__])


def strictly_utf8(value: object) -> bool:
    if isinstance(value, str):
        return lenient_strings.is_utf8(value)
    if isinstance(value, dict):
        return all(strictly_utf8(k) and strictly_utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return all(strictly_utf8(item) for item in value)
    return True


def test_a_letter_with_an_escaped_long_id_stays_a_short_string() -> None:
    letter = build_letter(incoming(message_id="\udcff" * 255), "why", FRAME_MAX)
    assert len((letter.properties.message_id or "").encode()) == 255


def test_the_bare_letter_keeps_the_body_and_says_what_is_missing() -> None:
    letter = bare_letter(incoming(headers={"a": 1, "b": 2}, body=b"raw"), "why")
    assert letter.body == b"raw" and letter.altered
    assert letter.properties.headers["x-dropped-headers"] == 2
    assert letter.properties.headers["x-error"].startswith("why; properties and headers")
