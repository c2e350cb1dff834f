"""A received message again, with other headers: what dead-lettering and replay both send."""

from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage

# The properties a copy carries over as they came (headers are replaced, delivery is persistent;
# expiration, user_id and cluster_id are not carried).
KEPT_PROPERTIES = (
    "content_type",
    "content_encoding",
    "priority",
    "correlation_id",
    "reply_to",
    "message_id",
    "timestamp",
    "type",
    "app_id",
)


def copy_with_headers(original: AbstractIncomingMessage, headers: dict[str, Any]) -> Message:
    """Same body and properties (persistent), so nothing about the message is lost on the way."""
    kept = {name: getattr(original, name) for name in KEPT_PROPERTIES}
    return Message(original.body, headers=headers, delivery_mode=DeliveryMode.PERSISTENT, **kept)
