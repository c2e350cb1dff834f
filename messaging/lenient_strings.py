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

import struct
from collections.abc import Mapping
from typing import Any

from aio_pika.abc import AbstractMessage
from pamqp import common, decode, encode

_ERRORS = "surrogateescape"


def _short_str(value: bytes) -> tuple[int, str]:
    try:
        length = common.Struct.byte.unpack(value[0:1])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err
    return length + 1, value[1 : length + 1].decode("utf-8", _ERRORS)


def _field_table(value: bytes) -> tuple[int, common.FieldTable]:
    """pamqp's `field_table`, with header names decoded leniently."""
    try:
        length = common.Struct.integer.unpack(value[0:4])[0]
        offset = 4
        data: dict[str, common.FieldValue] = {}
        end = offset + length
        if end > len(value):
            raise ValueError("Field table length exceeds available data")
        while offset < end:
            key_length = common.Struct.byte.unpack_from(value, offset)[0]
            offset += 1
            if offset + key_length > end:
                raise ValueError("Field table key length exceeds data")
            key = value[offset : offset + key_length].decode("utf-8", _ERRORS)
            offset += key_length
            consumed, result = decode.embedded_value(value[offset:])
            offset += consumed
            data[key] = result
        return end, data
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack data") from err


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
