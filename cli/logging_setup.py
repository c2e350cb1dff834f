"""structlog for our lines and stdlib's (aio-pika, SQLAlchemy, uvicorn) through one renderer.

JSON when not on a terminal (or LOG_FORMAT=json), coloured console otherwise.
"""

import atexit
import logging
import sys
from collections.abc import Callable
from typing import Any, Literal

import structlog

from cli.log_writer import LoopBatchedWriter


def configure_logging(log_format: Literal["console", "json"], level: int = logging.INFO) -> None:
    """Our own lines go straight to stderr (structlog's fast native path: one line per
    interaction is a hot path); stdlib records get the same processors and renderer."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, _format_exc_info(log_format), renderer],
        logger_factory=_writer_factory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _format_exc_info(log_format),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aio_pika", "aiormq", "sqlalchemy.engine", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
