"""Which `reply_to` values the worker may publish a reply copy to: a pure check, no I/O.

A reply copy goes to the default exchange with `reply_to` as its routing key, so the value is
the publisher's to choose and the broker's to judge. Three kinds are never sent:

- this service's own queues (`interactions`, `interactions.*`, `operators`, `operators.*`):
  the event would become a command, or a dead letter;
- names no queue can have: empty, over 255 bytes, control characters, a name in the broker's
  reserved `amq.` namespace other than a server-named queue (`amq.gen-…`) or direct reply-to;
- a direct reply-to name (`amq.rabbitmq.reply-to.<pid>.<key>`) whose `<pid>` is not the
  Erlang external term of a pid on a node named `reply@<digits>`. RabbitMQ (3.10 measured,
  tests/unit/test_reply_to.py lists the forms) decodes that part when the reply is published,
  and anything it cannot map to a node (a forged
  `amq.rabbitmq.reply-to.g2AAAAAAAAAAAAAAAAAAAAAAAA==.AAAA`, an atom of the old kind, a
  trailing byte, a node name without `reply@`) makes it close the *connection* with 541
  INTERNAL_ERROR. A well-formed pid of a node the broker does not know does the same: that is
  why reply copies go over a connection of their own (`messaging/replies.py`).
"""

import base64
import binascii
import re
import struct
from enum import StrEnum

SERVICE_PREFIXES = ("interactions", "operators")
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
SERVER_NAMED_PREFIX = "amq.gen-"
MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# External term format: 131, then NEW_PID_EXT (88) or PID_EXT (103), whose node is an atom
# in UTF-8 (118: 2-byte length, 119: 1-byte length); then ID, Serial (4 bytes each) and the
# Creation (4 bytes in NEW_PID_EXT, 1 in PID_EXT). Nothing may follow.
_TERM_VERSION, _NEW_PID, _OLD_PID = 131, 88, 103
_ATOM_UTF8, _SMALL_ATOM_UTF8 = 118, 119
_PID_TAIL = {_NEW_PID: 12, _OLD_PID: 9}
_REPLY_NODE = re.compile(rb"reply@[0-9]{1,20}")


class ReplyToRefusal(StrEnum):
    """Why a `reply_to` was ignored: the `reason` label of `leadrouter_reply_to_ignored_total`."""

    OWN_QUEUE = "own_queue"
    MALFORMED = "malformed"
    BROKER_WOULD_REFUSE = "broker_would_refuse"


def is_own_queue(name: str) -> bool:
    """`interactions`, `operators` and every name under them are this service's (contract)."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in SERVICE_PREFIXES)


def reply_to_refusal(name: str) -> ReplyToRefusal | None:
    """None when a reply copy may be published to `name`, else why not."""
    if is_own_queue(name):
        return ReplyToRefusal.OWN_QUEUE
    if not name or name.strip() != name or _CONTROL.search(name) or not _fits(name):
        return ReplyToRefusal.MALFORMED
    if not name.startswith("amq."):
        return None
    if name.startswith(SERVER_NAMED_PREFIX) and len(name) > len(SERVER_NAMED_PREFIX):
        return None
    if name.startswith(DIRECT_REPLY_TO + "."):
        return None if _is_direct_reply_to(name) else ReplyToRefusal.BROKER_WOULD_REFUSE
    return ReplyToRefusal.MALFORMED  # reserved namespace: no client-reachable queue is there


def _fits(name: str) -> bool:
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 on the wire
        return False


def _is_direct_reply_to(name: str) -> bool:
    """`amq.rabbitmq.reply-to.<base64 pid>.<key>` with a pid the broker can decode."""
    encoded, dot, key = name[len(DIRECT_REPLY_TO) + 1 :].partition(".")
    if not dot or not key or not encoded:
        return False
    try:
        term = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return _is_reply_pid(term)


def _is_reply_pid(term: bytes) -> bool:
    if len(term) < 4 or term[0] != _TERM_VERSION or term[1] not in _PID_TAIL:
        return False
    tail, atom_tag = _PID_TAIL[term[1]], term[2]
    if atom_tag == _ATOM_UTF8:
        (length,), start = struct.unpack_from(">H", term, 3), 5
    elif atom_tag == _SMALL_ATOM_UTF8:
        length, start = term[3], 4
    else:
        return False
    node = term[start : start + length]
    return len(term) == start + length + tail and _REPLY_NODE.fullmatch(node) is not None
