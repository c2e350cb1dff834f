"""Non-UTF-8 AMQP short strings must not cost the connection.

AMQP 0-9-1 short strings (`message_id`, `reply_to`, header names, ...) are bytes on the wire,
and RabbitMQ relays whatever a publisher put there. pamqp 4 decodes them as strict UTF-8, so
one message whose `message_id` is `bad-\\xff\\xfe` makes the content header undecodable: aiormq
drops the connection, the message comes back, and the consumer loops reconnecting while every
other message waits. (Reported upstream: docs/upstream/pamqp-non-utf8-short-strings.md.)

`install()` makes pamqp decode them with `surrogateescape` (each bad byte becomes one lone
surrogate, U+DC80..U+DCFF) and encode strings the same way, so such a value survives a decode
and an encode byte for byte: the worker can dead-letter the message with its original
properties, and `leadrouter dlq` can list and replay it. `invalid_utf8_property` tells the
worker which property was not UTF-8, so the message is refused with that reason.
"""

import datetime
import struct
from collections.abc import Mapping
from typing import Any

from aio_pika.abc import AbstractMessage
from pamqp import common, decode, encode

_ERRORS = "surrogateescape"
# Deeper header tables are not decoded (pamqp recursed until RecursionError and the
# connection dropped); such a value stays as its bytes and the message is refused.
MAX_TABLE_DEPTH = 64


def _short_str(value: bytes) -> tuple[int, str]:
    try:
        length = common.Struct.byte.unpack(value[0:1])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err
    return length + 1, value[1 : length + 1].decode("utf-8", _ERRORS)


class Undecodable(bytearray):
    """A header value the shim did not decode: its bytes as they came (type tag included),
    sent on as a byte array, which every AMQP client reads; `why` says what was wrong."""

    def __init__(self, raw: bytes, why: str) -> None:
        super().__init__(raw)
        self.why = why


class UnreadableTimestamp(datetime.datetime):
    """A `timestamp` property no `datetime` can hold (pamqp raised): the epoch, with `raw`."""

    raw: int


# Bytes after the type tag of each fixed-size field value (RabbitMQ's table types).
_FIXED_SIZES = {b"t": 1, b"b": 1, b"B": 1, b"s": 2, b"u": 2, b"I": 4, b"i": 4, b"l": 8, b"L": 8}
_FIXED_SIZES |= {b"f": 4, b"d": 8, b"D": 5, b"T": 8, b"V": 0, b"\x00": 0}
_SCALARS = {tag: decoder for tag, decoder in decode.TABLE_MAPPING.items() if tag not in b"FA"}


def _value(data: bytes, offset: int, depth: int) -> tuple[int, common.FieldValue]:
    """The field value whose type tag is at `offset`: (its end, the value). A nested table or
    array past MAX_TABLE_DEPTH, or a value pamqp cannot decode, is kept as `Undecodable`.
    Raises ValueError only when the value's own length cannot be known (unknown tag, cut)."""
    tag = data[offset : offset + 1]
    if tag in _FIXED_SIZES:
        end = offset + 1 + _FIXED_SIZES[tag]
    elif tag in (b"S", b"x", b"F", b"A"):
        end = offset + 5 + common.Struct.integer.unpack_from(data, offset + 1)[0]
    else:
        raise ValueError(f"unknown field type {tag!r}")
    if end > len(data):
        raise ValueError("field value exceeds its table")
    if tag in (b"F", b"A") and depth >= MAX_TABLE_DEPTH:
        return end, Undecodable(data[offset:end], f"nested deeper than {MAX_TABLE_DEPTH} levels")
    try:
        if tag == b"F":
            return end, _table_items(data, offset + 5, end, depth + 1)
        if tag == b"A":
            return end, _array_items(data, offset + 5, end, depth + 1)
        return end, _SCALARS[tag](data[offset + 1 : end])[1]
    except Exception as exc:  # a timestamp out of range, a cut table inside, ...
        return end, Undecodable(data[offset:end], f"not decodable: {exc}"[:120])


def _table_items(data: bytes, offset: int, end: int, depth: int) -> dict[str, common.FieldValue]:
    items: dict[str, common.FieldValue] = {}
    while offset < end:
        key_end = offset + 1 + data[offset]
        key = data[offset + 1 : min(key_end, end)].decode("utf-8", _ERRORS)
        try:
            if key_end > end:
                raise ValueError("field name exceeds its table")
            offset, items[key] = _value(data, key_end, depth)
        except (ValueError, struct.error) as exc:  # the rest of this table cannot be split
            items[key] = Undecodable(data[min(key_end, end) : end], f"not decodable: {exc}")
            break
    return items


def _array_items(data: bytes, offset: int, end: int, depth: int) -> list[common.FieldValue]:
    items: list[common.FieldValue] = []
    while offset < end:
        try:
            offset, item = _value(data, offset, depth)
        except (ValueError, struct.error) as exc:
            items.append(Undecodable(data[offset:end], f"not decodable: {exc}"))
            break
        items.append(item)
    return items


def _field_table(value: bytes) -> tuple[int, common.FieldTable]:
    """pamqp's `field_table`, with names decoded leniently, nesting bounded and every value
    that will not decode kept as `Undecodable`: the message stays readable, the connection up."""
    try:
        end = 4 + common.Struct.integer.unpack(value[0:4])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack data") from err
    if end > len(value):
        raise ValueError("Field table length exceeds available data")
    return end, _table_items(value, 4, end, 1)


def _field_array(value: bytes) -> tuple[int, common.FieldArray]:
    try:
        end = 4 + common.Struct.integer.unpack(value[0:4])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack data") from err
    if end > len(value):
        raise ValueError("Field array length exceeds available data")
    return end, _array_items(value, 4, end, 1)


def _timestamp(value: bytes) -> tuple[int, datetime.datetime]:
    try:
        return _PAMQP_TIMESTAMP(value)
    except (ValueError, OverflowError, OSError):
        unreadable = UnreadableTimestamp(1970, 1, 1, tzinfo=datetime.UTC)
        unreadable.raw = common.Struct.timestamp.unpack(value[0:8])[0]
        return 8, unreadable


_PAMQP_TIMESTAMP = decode.timestamp


def _string(encoder: struct.Struct, value: str) -> bytes:
    """pamqp's `_string`, encoding with `surrogateescape` so decoded bytes go out unchanged."""
    if not isinstance(value, str):
        raise TypeError(f"str required, received {type(value)}")
    temp = value.encode("utf-8", _ERRORS)
    max_length = 255 if encoder is common.Struct.byte else 4294967295
    if len(temp) > max_length:
        raise TypeError(f"string exceeds maximum length of {max_length} bytes")
    return encoder.pack(len(temp)) + temp


def _encode_field_table(value: common.FieldTable) -> bytes:
    """pamqp's `field_table` encoder, with header names encoded like every short string."""
    if not value:
        return common.Struct.integer.pack(0)
    if not isinstance(value, dict):
        raise TypeError(f"dict required, received {type(value)}")
    data = []
    for key, item in sorted(value.items()):
        data.append(
            encode.short_string(key.encode("utf-8", _ERRORS)[:128].decode("utf-8", _ERRORS))
        )
        try:
            data.append(encode.encode_table_value(item))
        except TypeError as err:
            raise TypeError(f"{key} error: {err}") from err
    output = b"".join(data)
    return common.Struct.integer.pack(len(output)) + output


def install() -> None:
    """Idempotent; call before the first connection of every process that speaks AMQP."""
    decode.short_str = _short_str
    decode.METHODS["shortstr"] = _short_str
    decode.field_table = _field_table
    decode.METHODS["table"] = _field_table
    decode.TABLE_MAPPING[b"F"] = _field_table
    decode.field_array = _field_array
    decode.METHODS["array"] = _field_array
    decode.TABLE_MAPPING[b"A"] = _field_array
    decode.METHODS["timestamp"] = _timestamp
    encode._string = _string
    encode.field_table = _encode_field_table
    encode.METHODS["table"] = _encode_field_table


def installed() -> bool:
    return decode.METHODS["shortstr"] is _short_str and encode._string is _string


def short_string_properties(message: AbstractMessage) -> dict[str, str | None]:
    """The properties a publisher writes as short strings, by their AMQP names, in the order
    a reason names them."""
    return {
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "type": message.type,
        "app_id": message.app_id,
        "user_id": message.user_id,
    }


def is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def invalid_utf8_property(properties: Mapping[str, Any], headers: Mapping[str, Any]) -> str | None:
    """`message_id is not valid UTF-8`, or None when every short string decoded cleanly."""
    for name, value in properties.items():
        if isinstance(value, str) and not is_utf8(value):
            return f"{name} is not valid UTF-8"
    for key in headers:
        if not is_utf8(key):
            return f"header name {printable(key)!r} is not valid UTF-8"
    return None


def printable(text: str) -> str:
    """For terminals and logs: undecodable bytes shown as `\\xff`, never an encoding error."""
    try:
        return text.encode("utf-8", _ERRORS).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def undecodable_reason(headers: Mapping[str, Any], timestamp: object = None) -> str | None:
    """Why the shim could not decode part of a message (`Undecodable`, `UnreadableTimestamp`),
    or None: such a message is refused, never half-read."""
    if isinstance(timestamp, UnreadableTimestamp):
        return f"timestamp {timestamp.raw} is out of range"
    for key, value in headers.items():
        if (why := _undecodable_in(value)) is not None:
            return f"header {printable(key)!r} could not be decoded ({why})"
    return None


def _undecodable_in(value: object) -> str | None:
    """Depth-first; decoded tables are at most MAX_TABLE_DEPTH deep, so this recursion is too."""
    if isinstance(value, Undecodable):
        return value.why
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        if (why := _undecodable_in(item)) is not None:
            return why
    return None
