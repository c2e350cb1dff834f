"""`leadrouter dlq list` and `leadrouter dlq replay`: the operator's side of dead letters.

The usual cycle: `list` shows why messages failed (`x-error`), you fix the cause (create the
missing source, correct the bot), then `replay` moves them back to be processed again.
"""

import argparse
import asyncio
import sys
import unicodedata

from cli import dead_letters
from cli.table import render_table
from messaging.nodes import NoNodeAnswered
from messaging.topology import COMMANDS_EXCHANGE, DEAD_QUEUE
from schemas.redact import redact
from schemas.settings import Settings

PREVIEW_CHARS = 60
ERROR_CHARS = 90


def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """Broker problems end in one line on stderr, not a traceback: a broker that refuses at
    start with its own exit code (cli/startup_errors.py), a later loss with 2."""
    try:
        if args.dlq_command == "list":
            return list_command(settings.amqp_url, args.limit, full=args.full)
        return replay_command(settings.amqp_url, args.limit, assume_yes=args.yes)
    except dead_letters.TopologyMissing as exc:
        print(f"leadrouter: {exc}", file=sys.stderr)
    except NoNodeAnswered:
        raise  # a start-up failure: its own line and exit code (cli/startup_errors.py)
    except ConnectionError as exc:
        reason = redact(str(exc))
        print(f"leadrouter: cannot reach the broker (AMQP_URL): {reason}", file=sys.stderr)
    return 2


def list_command(amqp_url: str, limit: int, *, full: bool) -> int:
    total, letters = asyncio.run(dead_letters.peek(amqp_url, limit))
    print(f"{DEAD_QUEUE}: {total} dead letter(s), showing {len(letters)}")
    if full:
        for number, letter in enumerate(letters, 1):
            print(_block(number, letter))
    elif letters:
        print(render_table(["#", "message_id", "routing key", "x-error", "body"], _rows(letters)))
    return 0


def _rows(letters: list[dead_letters.DeadLetter]) -> list[list[object]]:
    return [
        [
            n,
            _message_id(d),
            safe(d.routing_key),
            _cut(safe(d.error), ERROR_CHARS),
            _cut(safe(d.body.decode(errors="replace")), PREVIEW_CHARS),
        ]
        for n, d in enumerate(letters, 1)
    ]


def _block(number: int, letter: dead_letters.DeadLetter) -> str:
    originals = "".join(
        f"\n  original {name} (not UTF-8): {raw!r}" for name, raw in letter.originals.items()
    )
    return (
        f"\n#{number} message_id={safe(letter.message_id or '-')} "
        f"routing_key={safe(letter.routing_key)}{originals}\n"
        f"  x-error: {safe(letter.error)}\n"
        f"  body: {safe(letter.body.decode(errors='replace'))}"
    )


def _message_id(letter: dead_letters.DeadLetter) -> str:
    """As the letter carries it; with its original bytes when those were not UTF-8."""
    shown = safe(letter.message_id or "-")
    raw = letter.originals.get("message_id")
    return shown if raw is None else f"{shown} (bytes {raw!r})"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control and format characters (bidi overrides too), line and paragraph separators,
# surrogates, private use: whatever could move the cursor, reorder text or end a line.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def safe(text: str) -> str:
    """Publisher-controlled text for a terminal: one line, nothing a terminal interprets."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(c) if _unsafe(c) else c for c in text)


def _unsafe(char: str) -> bool:
    return not char.isprintable() or unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def replay_command(amqp_url: str, limit: int | None, *, assume_yes: bool) -> int:
    """Count, confirm (the prompt runs with no connection open), then replay that many."""
    total = asyncio.run(dead_letters.count(amqp_url))
    todo = total if limit is None else min(total, limit)
    if todo == 0:
        print(f"{DEAD_QUEUE} is empty: nothing to replay")
        return 0
    question = f"Replay {todo} of {total} dead letter(s) to exchange {COMMANDS_EXCHANGE}? [y/N] "
    if not assume_yes and not confirm(question):
        print("nothing replayed")
        return 1
    report = asyncio.run(dead_letters.replay(amqp_url, todo))
    print(f"replayed {report.replayed} of {todo} dead letter(s) to exchange {COMMANDS_EXCHANGE}")
    for failure in report.failed:
        print(f"  left in {DEAD_QUEUE}: {safe(failure)}")
    return 1 if report.failed else 0


def confirm(question: str) -> bool:
    """y/yes confirms; anything else, or no terminal input at all, declines."""
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    return answer.strip().lower() in ("y", "yes")
