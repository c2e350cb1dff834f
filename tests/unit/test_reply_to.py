"""Which reply_to values get a reply copy. The direct reply-to forms are the ones measured on
RabbitMQ 3.10.8 (tests/hostile/test_reply_to.py publishes each against the real broker):
"refuses" means the broker closed the publishing connection with 541 INTERNAL_ERROR."""

import base64
import struct

import pytest

from messaging.reply_to import ReplyToRefusal, is_own_queue, reply_to_refusal

PREFIX = "amq.rabbitmq.reply-to."
# A name the broker gave a real direct reply-to consumer (3.10.8): NEW_PID_EXT, node reply@<n>.
GENUINE = PREFIX + "g1h2AA1yZXBseUA5MjQ4ODg0AAAGrAAAAABrFr4f.Rd+fH9D3XgE7f1d6a4rGQw=="
FORGED = PREFIX + "g2AAAAAAAAAAAAAAAAAAAAAAAA==.AAAA"  # issue 21: 541 on 3.10


def pid(node: bytes, *, tag: int = 88, atom: int = 118, extra: bytes = b"") -> str:
    name = (
        bytes([118]) + struct.pack(">H", len(node)) + node
        if atom == 118
        else bytes([atom, len(node)]) + node
        if atom == 119
        else bytes([atom]) + struct.pack(">H", len(node)) + node
    )
    tail = struct.pack(">III", 1, 0, 7) if tag == 88 else struct.pack(">IIB", 1, 0, 3)
    return base64.b64encode(bytes([131, tag]) + name + tail + extra).decode()


@pytest.mark.parametrize(
    "name",
    [
        "replies",
        "bot-7.replies",
        "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
        GENUINE,
        GENUINE.rstrip("="),  # base64 padding is optional (the broker accepted it)
        PREFIX + pid(b"reply@9248884", atom=119) + ".key",
        PREFIX + pid(b"reply@9248884", tag=103) + ".key",
        "interactionsX",  # not under the service's names
        "операторы",
    ],
)
def test_names_a_reply_may_go_to(name: str) -> None:
    assert reply_to_refusal(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("interactions", ReplyToRefusal.OWN_QUEUE),
        ("interactions.create", ReplyToRefusal.OWN_QUEUE),
        ("interactions.dead", ReplyToRefusal.OWN_QUEUE),
        ("operators", ReplyToRefusal.OWN_QUEUE),
        ("operators.presence", ReplyToRefusal.OWN_QUEUE),
        ("", ReplyToRefusal.MALFORMED),
        (" q", ReplyToRefusal.MALFORMED),
        ("a\x01b", ReplyToRefusal.MALFORMED),
        ("a\x00b", ReplyToRefusal.MALFORMED),
        ("é" * 128, ReplyToRefusal.MALFORMED),  # 256 bytes
        ("bad-\udcff", ReplyToRefusal.MALFORMED),  # bytes that were not UTF-8
        ("amq.foo", ReplyToRefusal.MALFORMED),
        ("amq.gen-", ReplyToRefusal.MALFORMED),
        ("amq.rabbitmq.reply-to", ReplyToRefusal.MALFORMED),
        (FORGED, ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + "abc.def", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + "!!!.def", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + "garbage", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX, ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + pid(b"rabbit@nowhere") + ".k", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + pid(b"nowhere") + ".k", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + pid(b"reply@9248884", atom=100) + ".k", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + pid(b"reply@9248884", extra=b"\0") + ".k", ReplyToRefusal.BROKER_WOULD_REFUSE),
        (PREFIX + pid(b"reply@9248884") + ".", ReplyToRefusal.BROKER_WOULD_REFUSE),
    ],
)
def test_names_that_are_ignored_and_why(name: str, why: ReplyToRefusal) -> None:
    assert reply_to_refusal(name) is why


def test_own_queues_are_the_contracts_prefixes() -> None:
    assert is_own_queue("operators.x") and is_own_queue("interactions.events")
    assert not is_own_queue("operatorsx") and not is_own_queue("my.interactions")
