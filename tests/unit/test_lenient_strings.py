"""Short strings that are not UTF-8 decode, re-encode byte for byte, and are named in a reason."""

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
