"""`leadrouter` entry point: one subcommand per process kind."""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from cli.logging_setup import configure_logging
from cli.settings_loader import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadrouter",
        description="Routes customer interactions from RabbitMQ to operators. "
        "Settings come from the environment (AMQP_URL, DATABASE_URL, API_TOKEN, LOG_FORMAT, "
        "METRICS_PORT) and an optional .env file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker",
        help="consume interaction commands and route them",
        description="Declare the topology, consume interactions.create "
        "and interactions.close, assign operators, publish events.",
    )
    worker.add_argument(
        "--burst",
        action="store_true",
        help="exit once both work queues are empty (for tests and batch jobs)",
    )

    api = commands.add_parser(
        "api",
        help="serve the admin/read HTTP API",
        description="FastAPI on uvicorn; OpenAPI docs at /docs.",
    )
    api.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")

    db = commands.add_parser("db", help="database schema commands")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    db_commands.add_parser(
        "upgrade",
        help="apply migrations up to the newest (Alembic)",
        description="Apply Alembic migrations to DATABASE_URL.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.resolved_log_format)
    sys.exit(_dispatch(args, settings))


def _dispatch(args: argparse.Namespace, settings: object) -> int:
    from schemas.settings import Settings

    assert isinstance(settings, Settings)
    if args.command == "worker":
        from cli.worker_cmd import run_worker

        return asyncio.run(run_worker(settings, burst=args.burst))
    if args.command == "db":
        from db.schema_version import upgrade

        upgrade(settings.database_url)
        print(f"database at {settings.database_url} is at the newest schema")
        return 0
    if args.command == "api":
        from cli.api_cmd import run_api

        return run_api(settings, args.host, args.port)
    raise AssertionError(args.command)
