"""Short strings that are not UTF-8 decode, re-encode byte for byte, and are named in a reason."""

import struct
import sys
from datetime import UTC, datetime

from pamqp import commands, frame, header

from messaging import lenient_strings


def round_trip(properties: commands.Basic.Properties) -> commands.Basic.Properties:
    lenient_strings.install()
    raw = frame.marshal(header.ContentHeader(0, 10, properties), 1)
    _, _, decoded = frame.unmarshal(raw)
    assert isinstance(decoded, header.ContentHeader)
    return decoded.properties


def test_non_utf8_message_id_and_header_name_survive_decode_and_encode() -> None:
    sent = commands.Basic.Properties(
        message_id="bad-\udcff\udcfe", headers={"x-\udcc3": "v", "ok": {"nested-\udcff": 1}}
    )
    received = round_trip(sent)
    assert received.message_id == "bad-\udcff\udcfe"
    assert received.headers == {"x-\udcc3": "v", "ok": {"nested-\udcff": 1}}
    assert round_trip(received).message_id.encode("utf-8", "surrogateescape") == b"bad-\xff\xfe"


def test_valid_utf8_is_unchanged() -> None:
    received = round_trip(commands.Basic.Properties(message_id="заявка-1", reply_to="q"))
    assert (received.message_id, received.reply_to) == ("заявка-1", "q")


def test_the_reason_names_the_first_bad_property() -> None:
    bad = {"message_id": "ok", "correlation_id": "c-\udcff", "reply_to": None}
    assert lenient_strings.invalid_utf8_property(bad, {}) == "correlation_id is not valid UTF-8"
    assert lenient_strings.invalid_utf8_property({"message_id": "ok"}, {}) is None
    assert "not valid UTF-8" in (lenient_strings.invalid_utf8_property({}, {"\udcff": 1}) or "")


def test_printable_shows_the_bytes() -> None:
    assert lenient_strings.printable("bad-\udcff\udcfe") == "bad-\\xff\\xfe"
    assert lenient_strings.printable("\ud800") == "\\ud800"


def nested(depth: int) -> dict[str, object]:
    table: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        table = {"n": table}
    return table


def deep_round_trip(properties: commands.Basic.Properties) -> commands.Basic.Properties:
    """Encoding 3,000 levels recurses (only a test's publisher does that); decoding must not."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        raw = frame.marshal(header.ContentHeader(0, 10, properties), 1)
    finally:
        sys.setrecursionlimit(limit)
    lenient_strings.install()
    _, _, decoded = frame.unmarshal(raw)
    assert isinstance(decoded, header.ContentHeader)
    return decoded.properties


def test_a_table_nested_past_the_limit_stays_bytes_and_is_named_in_a_reason() -> None:
    received = deep_round_trip(
        commands.Basic.Properties(
            message_id="m", headers={"x-deep": nested(3000), "x-list": [[nested(3000)]], "ok": 1}
        )
    )
    headers = received.headers
    assert headers["ok"] == 1 and received.message_id == "m"  # what follows is decoded
    value, depth = headers["x-deep"], 1
    while isinstance(value, dict):
        value, depth = value["n"], depth + 1
    assert isinstance(value, lenient_strings.Undecodable)
    assert depth == lenient_strings.MAX_TABLE_DEPTH
    assert value.startswith(b"F") and "nested deeper than 64 levels" in value.why
    assert lenient_strings.undecodable_reason(headers) == (
        "header 'x-deep' could not be decoded (nested deeper than 64 levels)"
    )


def test_64_levels_decode_as_they_are() -> None:
    received = deep_round_trip(commands.Basic.Properties(headers={"x": nested(60)}))
    assert received.headers == {"x": nested(60)}
    assert lenient_strings.undecodable_reason(received.headers) is None


def test_an_unknown_type_or_a_timestamp_out_of_range_is_kept_as_bytes() -> None:
    sent = commands.Basic.Properties(
        headers={"a": 1, "t": datetime(2026, 1, 1, tzinfo=UTC), "z": "after"},
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    )
    raw = bytearray(frame.marshal(header.ContentHeader(0, 10, sent), 1))
    seconds = struct.pack(">Q", int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()))
    at = raw.index(seconds)  # the header's timestamp: out of any datetime's range
    raw[at : at + 8] = struct.pack(">Q", 2**63)
    at = raw.index(seconds)  # the property
    raw[at : at + 8] = struct.pack(">Q", 2**62)
    lenient_strings.install()
    _, _, decoded = frame.unmarshal(bytes(raw))
    assert isinstance(decoded, header.ContentHeader)
    properties = decoded.properties
    assert properties.headers["a"] == 1 and properties.headers["z"] == "after"
    assert isinstance(properties.headers["t"], lenient_strings.Undecodable)
    assert isinstance(properties.timestamp, lenient_strings.UnreadableTimestamp)
    assert lenient_strings.undecodable_reason(properties.headers, properties.timestamp) == (
        f"timestamp {2**62} is out of range"
    )
    # an unknown type tag: the rest of its table cannot be split, so it is kept as one value
    raw = bytearray(frame.marshal(header.ContentHeader(0, 10, commands.Basic.Properties(
        headers={"a": 1, "b": "x", "c": 2}
    )), 1))  # fmt: skip
    at = raw.index(b"\x01bS")
    raw[at + 2] = ord("Q")
    _, _, decoded = frame.unmarshal(bytes(raw))
    assert isinstance(decoded, header.ContentHeader)
    headers = decoded.properties.headers
    assert headers["a"] == 1 and isinstance(headers["b"], lenient_strings.Undecodable)
    assert "unknown field type" in headers["b"].why
