"""A received message again, with other headers: what dead-lettering and replay both send."""

from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage


def copy_with_headers(original: AbstractIncomingMessage, headers: dict[str, Any]) -> Message:
    """Same body and properties (persistent), so nothing about the message is lost on the way."""
    return Message(
        original.body,
        headers=headers,
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=original.priority,
        correlation_id=original.correlation_id,
        reply_to=original.reply_to,
        message_id=original.message_id,
        timestamp=original.timestamp,
        type=original.type,
        app_id=original.app_id,
    )
