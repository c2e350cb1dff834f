"""Mask the passwords in URLs before any text is printed or logged.

Credentials travel inside URLs (AMQP_URL, DATABASE_URL), and output and logs are read,
shipped and pasted far more widely than the environment those come from. `redact` is the one
place that knows how to hide them; the logging setup and every print of a URL go through it.
"""

import re
import sys
import traceback
from types import TracebackType

MASK = "***"

# `scheme://user:password@`: everything from the colon after the user name up to the last `@`
# before whitespace or the next `://` is the password. Greedy on purpose: an unencoded `@` or
# `/` in a password still ends up masked, and hiding a little too much of an odd URL is the
# safe mistake. Stopping at the next `://` keeps the work linear: log lines can quote hostile
# input, and `[^\s]*@` alone took seconds on 64 KiB of `://a:` repeated.
_USERINFO = re.compile(r"(://[^\s:/?#@]*:)(?:(?!://)\S)*@")


def redact(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` replaced by `***`."""
    if "://" not in text:  # the fast path: log lines are a hot path and rarely hold a URL
        return text
    return _USERINFO.sub(rf"\g<1>{MASK}@", text)


def redacting_excepthook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """A traceback that escapes every handler is printed masked too: exception messages
    (a driver's, a URL parser's) may quote the URL they were given."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))
    sys.stderr.flush()
