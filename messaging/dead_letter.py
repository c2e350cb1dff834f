"""What a dead letter carries: the original, readable by any AMQP client, within one frame.

The letter is the original body and properties plus `x-error` (why) and where it came from. Two
things about the original can make that letter harmful, and both are changed, and said so:
- A short string that is not UTF-8 (kept byte for byte by `messaging.lenient_strings`) makes
  stock clients (aio-pika, pika) drop their connection on reading the letter: each such property
  or header name is replaced by its escaped text (`bad-\\xff`), its bytes kept in a byte-array
  header `x-original-<property>` (`x-original-header-names` for header names).
- Original headers big enough that the letter's content header exceeds the negotiated frame size
  make the broker close the publishing connection (`frame_too_large`): the biggest are dropped
  until it fits, and `x-dropped-headers` counts them.
Pure: no I/O.
"""

import re
from dataclasses import dataclass
from typing import Any

from aio_pika import DeliveryMode
from aio_pika.abc import AbstractIncomingMessage
from aiormq import spec
from pamqp import common

from messaging.lenient_strings import UnreadableTimestamp, is_utf8, printable

ERROR_HEADER = "x-error"
ROUTING_KEY_HEADER = "x-original-routing-key"
EXCHANGE_HEADER = "x-original-exchange"
HEADER_NAMES_HEADER = "x-original-header-names"
TIMESTAMP_HEADER = "x-original-timestamp"
DROPPED_HEADER = "x-dropped-headers"
ORIGINAL_PREFIX = "x-original-"
# The short-string properties a letter carries over (aio-pika's names; `type` is AMQP's `type`).
SHORT_STRINGS = (
    "message_id",
    "correlation_id",
    "reply_to",
    "content_type",
    "content_encoding",
    "type",
    "app_id",
)
# Frame header (7) and end (1), then the content header's class, weight, body size and flags.
CONTENT_HEADER_OVERHEAD = 8 + 14
MAX_FIELD_NAME_BYTES = 128  # AMQP's limit for a field-table name (pamqp cuts longer ones)
MAX_SHORT_STRING_BYTES = 255
MAX_ERROR_CHARS = 300  # `x-error`, whatever it says (worker/reasons.py writes the reasons)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Letter:
    body: bytes
    properties: spec.Basic.Properties
    altered: bool  # a property escaped or a header dropped: a replay would not be the original


def original_property_header(name: str) -> str:
    """`message_id` -> `x-original-message-id`."""
    return ORIGINAL_PREFIX + name.replace("_", "-")


def build_letter(original: AbstractIncomingMessage, reason: str, frame_max: int) -> Letter:
    notes: list[str] = []
    headers, original_names = _readable_table(dict(original.headers or {}))
    if original_names:
        headers[HEADER_NAMES_HEADER] = [bytearray(name) for name in original_names]
        notes.append(f"header names not UTF-8: escaped, their bytes in {HEADER_NAMES_HEADER}")
    kept: dict[str, Any] = {}
    escaped: list[str] = []
    for name in SHORT_STRINGS:
        value = getattr(original, name)
        if isinstance(value, str) and not is_utf8(value):
            raw = value.encode("utf-8", "surrogateescape")
            headers[original_property_header(name)] = bytearray(raw)
            value = _cut(printable(value), MAX_SHORT_STRING_BYTES)
            escaped.append(name)
        kept[name] = value
    if escaped:
        notes.append(f"{', '.join(escaped)} not UTF-8: escaped, bytes in x-original-<property>")
    timestamp = original.timestamp
    if isinstance(timestamp, UnreadableTimestamp):
        headers[TIMESTAMP_HEADER] = bytearray(common.Struct.timestamp.pack(timestamp.raw))
        notes.append(f"timestamp out of range: dropped, bytes in {TIMESTAMP_HEADER}")
        timestamp = None
    headers[ROUTING_KEY_HEADER] = original.routing_key or ""
    headers[EXCHANGE_HEADER] = original.exchange or ""
    ours = set(headers) - set(original.headers or {}) | {HEADER_NAMES_HEADER}
    droppable = sorted(
        (name for name in headers if name not in ours),
        key=lambda name: len(_entry_bytes(name, headers[name])),
        reverse=True,
    )
    dropped: list[str] = []
    while True:
        headers[ERROR_HEADER] = _error(reason, notes, dropped)
        if dropped:
            headers[DROPPED_HEADER] = len(dropped)
        properties = spec.Basic.Properties(
            content_type=kept["content_type"],
            content_encoding=kept["content_encoding"],
            headers=headers,
            delivery_mode=DeliveryMode.PERSISTENT,
            priority=original.priority,
            correlation_id=kept["correlation_id"],
            reply_to=kept["reply_to"],
            message_id=kept["message_id"],
            timestamp=timestamp,
            message_type=kept["type"],
            app_id=kept["app_id"],
        )
        if not droppable or fits(properties, frame_max):
            return Letter(original.body, properties, bool(notes or dropped))
        dropped.append(name := droppable.pop(0))
        del headers[name]


def fits(properties: spec.Basic.Properties, frame_max: int) -> bool:
    """The content header must travel in one frame (frame_max 0: the broker set no limit)."""
    return not frame_max or len(properties.marshal()) + CONTENT_HEADER_OVERHEAD <= frame_max


def _error(reason: str, notes: list[str], dropped: list[str]) -> str:
    """The reason (already one line) and what the letter changed, within MAX_ERROR_CHARS:
    the reason is cut first, so what was changed is always said."""
    notes = list(notes)
    if dropped:
        more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
        notes.append(
            f"{len(dropped)} original header(s) dropped to fit the frame size: "
            + ", ".join(dropped[:3])
            + more
        )
    tail = _chars(_CONTROL.sub(" ", "; ".join(notes)), MAX_ERROR_CHARS // 2)
    if not tail:
        return _chars(reason, MAX_ERROR_CHARS)
    return f"{_chars(reason, MAX_ERROR_CHARS - len(tail) - 2)}; {tail}"


def _chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _readable_table(table: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """Names escaped where not UTF-8 (their bytes listed), cut to AMQP's 128 bytes on a
    character boundary; `bytes` values (a long string that was not UTF-8) as byte arrays."""
    names: list[bytes] = []
    readable: dict[str, Any] = {}
    for key, value in table.items():
        if not is_utf8(key):
            names.append(key.encode("utf-8", "surrogateescape"))
            key = printable(key)
        readable[_cut(key, MAX_FIELD_NAME_BYTES)] = _readable_value(value, names)
    return readable, names


def _readable_value(value: Any, names: list[bytes]) -> Any:
    if isinstance(value, dict):
        table, inner = _readable_table(value)
        names.extend(inner)
        return table
    if isinstance(value, list):
        return [_readable_value(item, names) for item in value]
    if isinstance(value, bytes):
        return bytearray(value)
    return value


def _cut(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def _entry_bytes(name: str, value: Any) -> bytes:
    return spec.Basic.Properties(headers={name: value}).marshal()
