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

from messaging.lenient_strings import Undecodable, UnreadableTimestamp, is_utf8, printable

ERROR_HEADER = "x-error"
ROUTING_KEY_HEADER = "x-original-routing-key"
EXCHANGE_HEADER = "x-original-exchange"
HEADER_NAMES_HEADER = "x-original-header-names"
TIMESTAMP_HEADER = "x-original-timestamp"
DROPPED_HEADER = "x-dropped-headers"
UNDECODABLE_HEADER = "x-undecodable-headers"
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
_ERRORS = "surrogateescape"
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
    originals, bad_names = _readable_table(dict(original.headers or {}))
    ours: dict[str, Any] = {}  # what the letter adds; set last, so a publisher cannot forge it
    if bad_names:
        ours[HEADER_NAMES_HEADER] = [bytearray(name) for name in bad_names]
        notes.append(f"header names escaped, original bytes in {HEADER_NAMES_HEADER}")
    kept: dict[str, Any] = {}
    escaped: list[str] = []
    for name in SHORT_STRINGS:
        value = getattr(original, name)
        if isinstance(value, str) and not is_utf8(value):
            ours[original_property_header(name)] = bytearray(value.encode("utf-8", _ERRORS))
            value = _cut(printable(value), MAX_SHORT_STRING_BYTES)
            escaped.append(name)
        kept[name] = value
    if escaped:
        aside = ", ".join(original_property_header(name) for name in escaped)
        notes.append(f"escaped in this letter, original bytes in {aside}")
    timestamp = original.timestamp
    if isinstance(timestamp, UnreadableTimestamp):
        ours[TIMESTAMP_HEADER] = bytearray(common.Struct.timestamp.pack(timestamp.raw))
        notes.append(f"timestamp out of range: dropped, bytes in {TIMESTAMP_HEADER}")
        timestamp = None
    if undecodable := [name for name, value in originals.items() if _holds_undecodable(value)]:
        ours[UNDECODABLE_HEADER] = undecodable
        notes.append(f"undecodable header(s) kept as byte arrays: {', '.join(undecodable[:3])}")
    ours[ROUTING_KEY_HEADER] = original.routing_key or ""
    ours[EXCHANGE_HEADER] = original.exchange or ""
    droppable: list[str] | None = None  # biggest first, worked out only when needed
    dropped: list[str] = []
    while True:
        ours[ERROR_HEADER] = _error(reason, notes, dropped)
        if dropped:
            ours[DROPPED_HEADER] = len(dropped)
        headers = {k: v for k, v in originals.items() if k not in ours and k not in dropped}
        properties = spec.Basic.Properties(
            content_type=kept["content_type"],
            content_encoding=kept["content_encoding"],
            headers=headers | ours,
            delivery_mode=DeliveryMode.PERSISTENT,
            priority=original.priority,
            correlation_id=kept["correlation_id"],
            reply_to=kept["reply_to"],
            message_id=kept["message_id"],
            timestamp=timestamp,
            message_type=kept["type"],
            app_id=kept["app_id"],
        )
        if fits(properties, frame_max):
            return Letter(original.body, properties, bool(notes or dropped))
        if droppable is None:
            droppable = sorted(headers, key=lambda k: len(_entry_bytes(k, headers[k])))
        if not droppable:
            return Letter(original.body, properties, bool(notes or dropped))
        dropped.append(droppable.pop())


def bare_letter(original: AbstractIncomingMessage, reason: str) -> Letter:
    """The body, the reason and where it came from, nothing else: what is sent if building
    the full letter failed, so that no original can make its own dead letter impossible."""
    headers: dict[str, Any] = {
        ERROR_HEADER: _error(reason, ["properties and headers not kept (unreadable)"], []),
        ROUTING_KEY_HEADER: printable(original.routing_key or ""),
        EXCHANGE_HEADER: printable(original.exchange or ""),
        DROPPED_HEADER: len(original.headers or {}),
    }
    properties = spec.Basic.Properties(headers=headers, delivery_mode=DeliveryMode.PERSISTENT)
    return Letter(original.body, properties, True)


def fits(properties: spec.Basic.Properties, frame_max: int) -> bool:
    """The content header must travel in one frame (frame_max 0: the broker set no limit).
    Encoded only when a cheap upper bound of its size does not settle it."""
    if not frame_max:
        return True
    bound = _upper_bound(properties.headers or {}) + _OTHER_PROPERTIES_BOUND
    if bound + CONTENT_HEADER_OVERHEAD <= frame_max:
        return True
    return len(properties.marshal()) + CONTENT_HEADER_OVERHEAD <= frame_max


# Every property but the headers: at most 8 short strings and a few fixed-size fields.
_OTHER_PROPERTIES_BOUND = 8 * 256 + 64


def _upper_bound(value: Any) -> int:
    """At least the encoded size of a field value (UTF-8 is at most 4 bytes a character)."""
    if isinstance(value, str):
        return 5 + 4 * len(value)
    if isinstance(value, bytes | bytearray):
        return 5 + len(value)
    if isinstance(value, dict):
        return 5 + sum(2 + 4 * len(k) + _upper_bound(v) for k, v in value.items())
    if isinstance(value, list):
        return 5 + sum(_upper_bound(item) for item in value)
    return 16  # numbers, booleans, void, timestamps, decimals


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


def _holds_undecodable(value: Any) -> bool:
    if isinstance(value, Undecodable):
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_holds_undecodable(item) for item in items)


def alteration(headers: dict[str, Any]) -> str | None:
    """Why a letter is not its original any more (so a replay would not send the original),
    or None. Read from the markers `build_letter` leaves."""
    escaped = [n for n in SHORT_STRINGS if original_property_header(n) in headers]
    if escaped:
        return f"{', '.join(escaped)} was not UTF-8 (escaped in the letter)"
    if HEADER_NAMES_HEADER in headers:
        return "header names were not UTF-8 (escaped in the letter)"
    if TIMESTAMP_HEADER in headers:
        return "its timestamp was out of range (dropped from the letter)"
    if UNDECODABLE_HEADER in headers:
        return "a header could not be decoded (kept as a byte array)"
    if DROPPED_HEADER in headers:
        return f"{headers[DROPPED_HEADER]} header(s) were dropped to fit the frame size"
    return None


def _cut(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def _entry_bytes(name: str, value: Any) -> bytes:
    return spec.Basic.Properties(headers={name: value}).marshal()
