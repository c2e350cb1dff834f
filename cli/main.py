"""`leadrouter` entry point: one subcommand per process kind or operator task.

Parsers are built here and cheaply (no heavy imports), so `--help` is fast and needs no
settings; each command's module is imported only when that command runs.
"""

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence

from cli import event_loop
from cli.logging_setup import configure_logging
from cli.settings_loader import load_settings
from schemas.redact import redact, redacting_excepthook
from schemas.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadrouter",
        description="Routes customer interactions from RabbitMQ to operators. "
        "Settings come from the environment (AMQP_URL, DATABASE_URL, API_TOKEN, "
        "API_ALLOWED_HOSTS, LOG_FORMAT, METRICS_PORT) and an optional .env file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary, add_arguments in SUBCOMMANDS:
        # As in click, a command's description is the docstring of what adds its arguments.
        description = inspect.getdoc(add_arguments)
        add_arguments(commands.add_parser(name, help=summary, description=description))
    _add_verbose(parser, default=False)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default: object) -> None:
    """`--verbose` before or after any (sub)command: `leadrouter -v db upgrade` and
    `leadrouter db upgrade -v` alike. Below the top, an absent flag leaves the top's value."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="also show the libraries' routine lines (Alembic's schema check and migration "
        "steps); they are warnings-only by default",
    )
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_verbose(child, default=argparse.SUPPRESS)


def _worker(worker: argparse.ArgumentParser) -> None:
    """Declare the topology, consume interactions.create, interactions.close and
    interactions.accept, assign or offer to operators, publish events, and mark overdue waits
    and expire offers once a second. With METRICS_PORT set, also serve Prometheus /metrics and
    a readiness /health on that port."""
    worker.add_argument(
        "--burst",
        action="store_true",
        help="exit once the work queues are empty (for tests and batch jobs)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",  # = worker_cmd.DEFAULT_METRICS_HOST; not imported, --help stays fast
        help="address for the METRICS_PORT server (default 127.0.0.1: this machine only; "
        "0.0.0.0 for a scraper elsewhere, as in docker-compose.yml)",
    )


def _api(api: argparse.ArgumentParser) -> None:
    """FastAPI on uvicorn; OpenAPI docs at /docs."""
    api.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def _db(db: argparse.ArgumentParser) -> None:
    """Database schema commands."""
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    db_commands.add_parser(
        "upgrade",
        help="apply migrations up to the newest (Alembic)",
        description="Apply Alembic migrations to DATABASE_URL.",
    )


def _demo(demo: argparse.ArgumentParser) -> None:
    """Against a running worker: create sample sources, operators and weights if the database
    has none, publish N interactions with a progress bar, wait for their events, and print
    observed shares next to the configured weights. With --scenario contact-centre: show the
    routing policies happening instead, as a table of events."""
    demo.add_argument("-n", "--count", type=_positive, default=1000, help="interactions (1000)")
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the events (120)"
    )
    demo.add_argument(
        "--keep-open",
        action="store_true",
        help="leave the interactions assigned (default: close each one once it is assigned, "
        "so operators' loads return to where they were)",
    )
    demo.add_argument(
        "--scenario",
        choices=("distribution", "contact-centre"),
        default="distribution",
        help="distribution (default): N interactions against the weights; contact-centre: "
        "stickiness, priority, an overdue wait and an expired offer, each seen happening, with "
        "operators and sources of its own",
    )


def _dlq(dlq: argparse.ArgumentParser) -> None:
    """Dead letters: messages the worker could not process, with the reason in their x-error
    header."""
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="DLQ_COMMAND")
    listing = sub.add_parser(
        "list",
        help="show dead letters and why they failed (they stay in the queue)",
        description="Show dead letters with message_id, original routing key, x-error and body.",
    )
    listing.add_argument("--limit", type=_positive, default=20, help="show at most N (20)")
    listing.add_argument("--full", action="store_true", help="full error and body, one block each")
    replay = sub.add_parser(
        "replay",
        help="move dead letters back to the interactions exchange after a fix",
        description="Republish dead letters, in queue order, to exchange interactions with their "
        "original routing key and properties (without x-error), with publisher confirms; each "
        "dead letter is removed only after the broker confirmed its copy.",
    )
    replay.add_argument("--limit", type=_positive, default=None, help="replay at most N (all)")
    replay.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _asyncapi(_: argparse.ArgumentParser) -> None:
    """Print the AsyncAPI 3.0 document of the AMQP surface (commands, events, queues,
    bindings), generated from the code, as JSON with sorted keys; the API serves the same at
    /asyncapi.json. Needs no settings and no broker."""


# Name, the one line `leadrouter --help` shows, and what adds the arguments (its docstring is
# the command's own --help description).
SUBCOMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("worker", "consume interaction commands and route them", _worker),
    ("api", "serve the admin/read HTTP API", _api),
    ("db", "database schema commands", _db),
    ("demo", "publish sample interactions and show the resulting distribution", _demo),
    ("dlq", "inspect and replay dead letters (interactions.dead)", _dlq),
    ("asyncapi", "print the AsyncAPI 3.0 document of the AMQP interface (JSON)", _asyncapi),
)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def main(argv: Sequence[str] | None = None) -> None:
    sys.excepthook = redacting_excepthook  # before anything can fail: settings, imports, I/O
    args = build_parser().parse_args(argv)
    if args.command == "asyncapi":  # generated from the code alone: no settings to load
        from messaging.asyncapi import asyncapi_json

        sys.stdout.write(asyncapi_json())
        sys.exit(0)
    settings = load_settings()
    configure_logging(settings.resolved_log_format, verbose=args.verbose)
    sys.exit(_dispatch(args, settings))


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """A broker or database that refuses at start ends in one line and its exit code
    (cli/startup_errors.py); anything else keeps its (masked) traceback."""
    try:
        return _dispatch_command(args, settings)
    except Exception as exc:
        from cli.startup_errors import explain

        command = " ".join(
            str(part)
            for part in (args.command, getattr(args, "db_command", None))
            if part is not None
        )
        failure = explain(command, exc)
        if failure is None:
            raise
        print(failure.line, file=sys.stderr)
        return int(failure.code)


def _dispatch_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "worker":
        from cli.worker_cmd import run_worker

        burst, host = args.burst, args.metrics_host
        return event_loop.run(run_worker(settings, burst=burst, metrics_host=host))
    if args.command == "db":
        from db.schema_version import upgrade

        upgrade(settings.database_url)
        print(f"database at {redact(settings.database_url)} is at the newest schema")
        return 0
    if args.command == "api":
        from cli.api_cmd import run_api

        return run_api(settings, args.host, args.port)
    return _dispatch_tools(args, settings)


def _dispatch_tools(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from cli.demo import run_demo

        return run_demo(
            settings,
            args.count,
            timeout_s=args.timeout,
            keep_open=args.keep_open,
            scenario=args.scenario,
        )
    if args.command == "dlq":
        from cli.dlq import run_dlq

        return run_dlq(args, settings)
    raise AssertionError(args.command)
