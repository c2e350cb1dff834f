"""structlog for our lines and stdlib's (aio-pika, SQLAlchemy, uvicorn) through one renderer.

JSON when not on a terminal (or LOG_FORMAT=json), coloured console otherwise. Every line, ours
or a library's, passes `redact_secrets` first, so a URL's password never reaches the output.
"""

import atexit
import dataclasses
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TextIO

import orjson
import structlog

from cli.log_writer import LoopBatchedWriter
from schemas.redact import redact

# Libraries that narrate routine steps at INFO: warnings only, unless `--verbose`. Alembic says
# "Context impl SQLiteImpl." and "Will assume non-transactional DDL." on every start-up check.
CHATTY_LOGGERS = ("alembic",)
NOISY_LOGGERS = ("aio_pika", "aiormq", "sqlalchemy.engine")


def configure_logging(
    log_format: Literal["console", "json"], level: int = logging.INFO, *, verbose: bool = False
) -> None:
    """Our own lines go straight to stderr (structlog's fast native path: one line per
    interaction is a hot path); stdlib records get the same processors and renderer.
    `verbose` lets the chatty libraries (Alembic's migration steps) speak at `level` too."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=json_line)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=_redacting_exception_formatter()
        )
    )
    structlog.configure(
        processors=[*shared, _format_exc_info(log_format), redact_secrets, renderer],
        logger_factory=_writer_factory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _format_exc_info(log_format),
            redact_secrets,
            renderer,
        ],
    )
    transport = logging.getLogger("aiormq.connection")
    if not any(isinstance(f, _SaidByUs) for f in transport.filters):
        transport.addFilter(_SaidByUs())

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for chatty in CHATTY_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if verbose:  # its plugin loader's lines say nothing even then
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _SaidByUs(logging.Filter):
    """Drops aiormq's "error when creating transport": a first connection's failure is the
    command's one start-up line (cli/startup_errors.py), a lost one's is "broker connection
    lost" (messaging/nodes.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error when creating transport")


def json_line(event_dict: structlog.typing.EventDict, **dumps_kw: Any) -> str:
    """orjson behind the `json.dumps` signature structlog calls: a line per interaction is a
    hot path, and orjson encodes one faster (docs/performance.md). What orjson refuses (a lone
    surrogate from a hostile property, an integer beyond 64 bits) goes through `json.dumps`."""
    try:
        return orjson.dumps(
            event_dict, default=dumps_kw.get("default"), option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event_dict, **dumps_kw)


def _writer_factory() -> Callable[..., Any]:
    writer = LoopBatchedWriter(sys.stderr)
    atexit.register(writer.flush)
    return lambda *_args: writer


def _format_exc_info(log_format: str) -> structlog.typing.Processor:
    return structlog.processors.format_exc_info if log_format == "json" else _identity


def _identity(
    _logger: object, _name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event_dict


_SCALARS = frozenset({int, float, bool, type(None)})
_PLAIN = (str, int, float, bool, type(None))


def redact_secrets(
    _logger: object, _name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Mask `scheme://user:password@` in the event and every value, nested ones included.

    Runs on every line, so the common case (ints and short strings without `://`) costs a type
    check and a substring test. Other objects (exceptions, models) are rendered with `repr`
    by both renderers; that text replaces the object only when it held a password.
    `exc_info` is left to the renderer: JSON gets it formatted (and masked) as `exception`
    by then, the console masks it in `_redacting_exception_formatter`.
    """
    for key, value in event_dict.items():
        if isinstance(value, str):  # str subclasses too: a StrEnum (a status) is plain text
            if "://" in value:
                event_dict[key] = redact(value)
        elif type(value) not in _SCALARS and key != "exc_info":
            masked = _redact_value(value)
            if masked is not value:
                event_dict[key] = masked
    return event_dict


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        items = {k: _redact_value(v) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if isinstance(value, list | tuple | set | frozenset):
        masked = [_redact_value(v) for v in value]
        changed = any(m is not v for m, v in zip(masked, value, strict=True))
        return masked if changed else value
    text = repr(value)
    redacted = redact(text)
    return redacted if redacted != text else value


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _redacting_exception_formatter() -> structlog.typing.ExceptionRenderer:
    """The console's traceback, masked. Without local variables: they hold URLs and settings,
    and rich cuts long strings, which could leave a password without the `@` that marks it.
    Colour codes can split a URL, so a traceback that holds a password is printed plain."""
    inner = structlog.dev.default_exception_formatter
    if isinstance(inner, structlog.dev.RichTracebackFormatter):
        inner = dataclasses.replace(inner, show_locals=False)

    def render(sio: TextIO, exc_info: structlog.typing.ExcInfo) -> None:
        buffer = io.StringIO()
        inner(buffer, exc_info)
        text = buffer.getvalue()
        plain = _ANSI.sub("", text)
        masked = redact(plain)
        sio.write(text if masked == plain else masked)

    return render
