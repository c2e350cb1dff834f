"""From AMQP bytes to a validated command, or a one-line reason why not. Pure: no I/O."""

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.messages import PAYLOAD_LIMIT_BYTES, RAW_BODY, CloseInteraction, CreateInteraction
from worker.commands import CloseRequest, CreateRequest, Envelope, Refused

CommandKind = Literal["create", "close"]
# The payload may be 64 KiB; the rest of a create body is a few hundred bytes at most.
MAX_BODY_BYTES = PAYLOAD_LIMIT_BYTES + 4096
MAX_REASON_CHARS = 500
M = TypeVar("M", bound=BaseModel)


def parse_command(
    kind: CommandKind, key: int, body: bytes, envelope: Envelope
) -> CreateRequest | CloseRequest | Refused:
    if len(body) > MAX_BODY_BYTES:
        return Refused(f"message body is {len(body)} bytes, over the {MAX_BODY_BYTES} byte limit")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Refused(f"body is not JSON: {exc}")
    if kind == "create":
        create = _validate(CreateInteraction, document, {RAW_BODY: body})
        return create if isinstance(create, Refused) else CreateRequest(key, create, envelope)
    close = _validate(CloseInteraction, document)
    return close if isinstance(close, Refused) else CloseRequest(key, close, envelope)


def _validate(model: type[M], document: Any, context: dict[str, Any] | None = None) -> M | Refused:
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        return Refused(f"invalid {model.__name__}: {summarise(exc)}")


def summarise(exc: ValidationError) -> str:
    """pydantic's errors as one line: `email: value is not a valid email ...; source_id: ...`."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]
    return "; ".join(parts)[:MAX_REASON_CHARS]


def poison_reason(headers: dict[str, Any], delivery_limit: int) -> str | None:
    """A message delivered this often without an outcome crashes whoever takes it."""
    count = headers.get("x-delivery-count")
    if isinstance(count, int) and count >= delivery_limit:
        return f"delivery limit reached: delivered {count + 1} times without an outcome"
    return None
