"""Dead-letter reasons: one line, short, no SQL, no secrets, always encodable as a header.

`x-error` is read by people (`leadrouter dlq list`) and by tools; a reason that spans lines,
quotes a whole statement or carries a lone surrogate from hostile input would break both.
"""

import re

from sqlalchemy.exc import StatementError

from messaging.dead_letter import MAX_ERROR_CHARS
from schemas.redact import redact

MAX_REASON_CHARS = MAX_ERROR_CHARS
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Control characters folded to one space, credentials masked, cut to `limit` characters,
    and every character encodable as UTF-8 (lone surrogates become `\\udXXX` escapes)."""
    text = _CONTROL.sub(" ", text).strip()
    text = redact(text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_summary(exc: BaseException) -> str:
    """`ExceptionType: first line`. For a database error, the driver's message without the
    statement and parameters SQLAlchemy appends to it."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        return error_summary(exc.orig)
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
