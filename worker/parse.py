"""From AMQP bytes and properties to a validated command, or a one-line reason why not.

Pure: no I/O. Nothing a publisher sends can make these functions raise: whatever fails while
one message is read is that message's refusal, never its batch's.
"""

import json
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from messaging.lenient_strings import invalid_utf8_property, undecodable_reason
from routing.commands import AcceptRequest, CloseRequest, CreateRequest, Envelope, Request
from routing.outcomes import RefusalClass, Refused
from schemas.contacts import PHONE_REGION
from schemas.messages import (
    PAYLOAD_LIMIT_BYTES,
    RAW_BODY,
    AcceptInteraction,
    CloseInteraction,
    CreateInteraction,
)
from worker.reasons import error_summary, one_line

CommandKind = Literal["create", "close", "accept"]
# The payload may be 64 KiB; the rest of a create body is a few hundred bytes at most.
MAX_BODY_BYTES = PAYLOAD_LIMIT_BYTES + 4096
JSON_MEDIA_TYPE = "application/json"
M = TypeVar("M", bound=BaseModel)


def parse_command(
    kind: CommandKind, key: int, body: bytes, envelope: Envelope, phone_region: str | None = None
) -> Request | Refused:
    if len(body) > MAX_BODY_BYTES:
        return Refused(
            f"message body is {len(body)} bytes, over the {MAX_BODY_BYTES} byte limit",
            RefusalClass.TOO_LARGE,
        )
    try:
        document = json.loads(body)
    except RecursionError:
        return Refused("body is not JSON: nested too deeply", RefusalClass.NOT_JSON)
    except Exception as exc:  # JSONDecodeError, UnicodeDecodeError, ValueError (huge numbers)
        return Refused(one_line(f"body is not JSON: {exc}"), RefusalClass.NOT_JSON)
    if kind == "create":
        context = {RAW_BODY: body, PHONE_REGION: phone_region}
        create = _validate(CreateInteraction, document, context)
        return create if isinstance(create, Refused) else CreateRequest(key, create, envelope)
    if kind == "accept":
        accept = _validate(AcceptInteraction, document)
        return accept if isinstance(accept, Refused) else AcceptRequest(key, accept, envelope)
    close = _validate(CloseInteraction, document)
    return close if isinstance(close, Refused) else CloseRequest(key, close, envelope)


def _validate(model: type[M], document: Any, context: dict[str, Any] | None = None) -> M | Refused:
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        reason = f"invalid {model.__name__}: {summarise(exc)}"
    except RecursionError:
        reason = f"invalid {model.__name__}: nested too deeply"
    except Exception as exc:
        reason = f"invalid {model.__name__}: {error_summary(exc)}"
    return Refused(one_line(reason), RefusalClass.INVALID_BODY)


def summarise(exc: ValidationError) -> str:
    """pydantic's errors as one line: `email: value is not a valid email ...; source_id: ...`."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {_plain(error['msg'])}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return one_line("; ".join(parts))


def _plain(message: str) -> str:
    """pydantic prefixes a validator's own words with its error type; the words are enough."""
    return message.removeprefix("Value error, ")


def envelope_refusal(
    properties: Mapping[str, Any], headers: Mapping[str, Any], timestamp: object = None
) -> Refused | None:
    """What the AMQP envelope alone rules out, before the body is read."""
    if (not_utf8 := invalid_utf8_property(properties, headers)) is not None:
        return Refused(not_utf8, RefusalClass.INVALID_PROPERTY)
    if (undecodable := undecodable_reason(headers, timestamp)) is not None:
        return Refused(one_line(undecodable), RefusalClass.INVALID_PROPERTY)
    if (unstorable := unstorable_property(properties)) is not None:
        return Refused(unstorable, RefusalClass.INVALID_PROPERTY)
    content_type = properties.get("content_type")
    if not is_json_content_type(content_type):
        return Refused(
            one_line(f"content_type {content_type!r} is not {JSON_MEDIA_TYPE}"),
            RefusalClass.CONTENT_TYPE,
        )
    encoding = properties.get("content_encoding")
    if encoding and str(encoding).strip().lower() not in ("identity", "utf-8", "utf8"):
        return Refused(
            one_line(f"content_encoding {encoding!r} is not supported; send plain UTF-8 JSON"),
            RefusalClass.CONTENT_TYPE,
        )
    return None


# The properties a command's rows keep (interactions, outbox): what the database must store.
STORED_PROPERTIES = ("message_id", "correlation_id", "reply_to")


def unstorable_property(properties: Mapping[str, Any]) -> str | None:
    """A NUL fails a PostgreSQL text column, and with it the whole batch's transaction: refused
    here, alike on SQLite, as the message's own reason (lone surrogates are not UTF-8, above)."""
    for name in STORED_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, str) and "\x00" in value:
            return f"{name} contains the NUL character, which cannot be stored"
    return None


def is_json_content_type(content_type: object) -> bool:
    """`application/json` (any parameters, any case), or none at all, as the contract allows."""
    if content_type is None or content_type == "":
        return True
    if not isinstance(content_type, str):
        return False
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


def is_suspect(headers: Mapping[str, Any], redelivered: bool, delivery_limit: int) -> bool:
    """Delivered `delivery_limit` times or more without an outcome: processed alone.

    A count is not evidence: every connection lost with the message unacked adds one (3.x), so
    a suspect is processed as usual, only in a batch of its own, where a failure can be its
    own and nobody else's. Only a redelivery counts: on a first delivery `x-delivery-count`
    can only be a header the publisher set itself.
    """
    if not redelivered:
        return False
    count = headers.get("x-delivery-count")
    return isinstance(count, int) and not isinstance(count, bool) and count >= delivery_limit
