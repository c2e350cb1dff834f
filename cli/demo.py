"""`leadrouter demo`: show the distribution working, end to end, against a running worker.

It seeds the user guide's sample set-up into an empty database, publishes N interactions the
way a bot would (confirmed, persistent, with message_id), waits for every routing event, and
prints observed shares next to the configured weights. Unless `--keep-open`, it closes each
interaction once assigned, so operators' loads end where they started and the demo can re-run.
"""

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import ChannelNotFoundEntity

from cli import demo_scenario
from cli.demo_events import ROUTING_RESULTS, RoutingWatcher
from cli.demo_scenario import ScenarioError
from cli.demo_setup import DemoConfig, ensure_sample_setup, read_config
from cli.distribution import Outcome, operator_rows, source_rows
from cli.progress import ProgressBar
from cli.table import render_table
from db.schema_version import SchemaBehindError, ensure_schema_current
from db.session import create_engine, create_session_factory
from messaging import nodes
from messaging.topology import (
    CLOSE_ROUTING_KEY,
    COMMANDS_EXCHANGE,
    CREATE_QUEUE,
    CREATE_ROUTING_KEY,
    EVENTS_EXCHANGE,
)
from schemas.redact import redact
from schemas.settings import Settings

PUBLISH_CHUNK = 100


class DemoError(RuntimeError):
    """A precondition the user can fix; printed as one line."""


def run_demo(
    settings: Settings,
    count: int,
    *,
    timeout_s: float,
    keep_open: bool,
    scenario: str = "distribution",
) -> int:
    try:
        if scenario == "contact-centre":
            return asyncio.run(_contact_centre(settings))
        return asyncio.run(_demo(settings, count, timeout_s, keep_open))
    except (DemoError, ScenarioError) as exc:
        print(redact(f"leadrouter demo: {exc}"), file=sys.stderr)
    except nodes.NoNodeAnswered:
        raise  # a start-up failure: its own line and exit code (cli/startup_errors.py)
    except ConnectionError as exc:
        print(
            redact(f"leadrouter demo: cannot reach the broker (AMQP_URL): {exc}"), file=sys.stderr
        )
    return 2


async def _demo(settings: Settings, count: int, timeout_s: float, keep_open: bool) -> int:
    config = await _prepare_database(settings.database_url)
    outcomes, unanswered = await _publish_and_watch(
        settings.amqp_url, config, count, timeout_s, keep_open
    )
    _print_report(config, outcomes)
    if unanswered:
        print(
            f"\n{len(unanswered)} of {count} interactions got no routing event (interaction."
            f"assigned, .offered, .accepted or .waiting) within {timeout_s:g} s, the first "
            f"message_id {unanswered[0]}: is the worker running and keeping up? Check its log "
            "and `leadrouter dlq list`, or give it longer with --timeout"
        )
    return 1 if unanswered else 0


async def _contact_centre(settings: Settings) -> int:
    """The routing policies seen happening (`cli/demo_scenario.py`), as a table of events."""
    connection = await nodes.connect(settings.amqp_url)
    async with connection:
        await _require_worker(connection)
    engine = create_engine(settings.database_url)
    try:
        try:
            await ensure_schema_current(engine)
        except SchemaBehindError as exc:
            raise DemoError(str(exc)) from exc
        sessions = create_session_factory(engine)
        cast = await demo_scenario.set_up(sessions)
        try:
            names = ", ".join(cast.operators.values())
            print(f"contact-centre scenario {cast.run}: operators {names} (load limit 1 each)")
            rows = await demo_scenario.play(settings.amqp_url, cast)
        finally:
            await demo_scenario.tear_down(sessions, cast)
    finally:
        await engine.dispose()
    print(demo_scenario.render(rows))
    print(
        "\nsticky: anna's second chat went to her previous operator; overdue: dmitry and elena "
        f"waited past {demo_scenario.MAX_WAIT_S} s; priority: elena (9) was served before dmitry "
        "(0), who wrote first; offers: fedor's call expired unanswered and went to the other "
        "operator, who accepted it"
    )
    print("\nits operators are now inactive: a later `leadrouter demo` leaves them out")
    return 0


async def _prepare_database(database_url: str) -> DemoConfig:
    engine = create_engine(database_url)
    try:
        await ensure_schema_current(engine)
        sessions = create_session_factory(engine)
        if await ensure_sample_setup(sessions):
            print("empty database: created the sample operators, sources and weights")
        config = await read_config(sessions)
    except SchemaBehindError as exc:
        raise DemoError(str(exc)) from exc
    finally:
        await engine.dispose()
    if not config.sources:
        raise DemoError(
            "no source has an active operator with a weight: set weights with "
            "PUT /api/v1/sources/{id}/operators, or run the demo on an empty database"
        )
    return config


async def _publish_and_watch(
    amqp_url: str, config: DemoConfig, count: int, timeout_s: float, keep_open: bool
) -> tuple[list[Outcome], list[str]]:
    run = uuid.uuid4().hex[:8]
    plan = {f"demo-{run}-{i}": config.sources[i % len(config.sources)].id for i in range(count)}
    connection = await nodes.connect(amqp_url)  # the first node of AMQP_URL that answers
    async with connection:
        await _require_worker(connection)
        channel = await connection.channel(publisher_confirms=True)
        commands = await channel.get_exchange(COMMANDS_EXCHANGE)
        closes: set[asyncio.Task[None]] = set()
        closer = None if keep_open else _closer(commands, closes)
        watcher = RoutingWatcher(plan, closer)
        await _subscribe(channel, watcher)
        await _publish_all(commands, plan)
        await _await_results(watcher, count, timeout_s)
        await asyncio.gather(*closes)
    return list(watcher.outcomes.values()), watcher.unanswered()


async def _require_worker(connection: AbstractConnection) -> None:
    """Publishing with nobody consuming would only fill the queue; say so up front."""
    channel = await connection.channel()  # its own: a failed passive declare closes it
    try:
        queue = await channel.declare_queue(CREATE_QUEUE, passive=True)
    except ChannelNotFoundEntity:
        queue = None
    if queue is None or not queue.declaration_result.consumer_count:
        raise DemoError(f"no worker consumes {CREATE_QUEUE}: start `leadrouter worker` first")
    await channel.close()


async def _subscribe(channel: AbstractChannel, watcher: RoutingWatcher) -> None:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    events = await channel.get_exchange(EVENTS_EXCHANGE)
    for routing_key in ROUTING_RESULTS:
        await queue.bind(events, routing_key)
    await queue.consume(watcher.on_message, no_ack=True)


def _closer(commands: AbstractExchange, tasks: set[asyncio.Task[None]]) -> Callable[[int], None]:
    """Close each interaction as it is assigned (in the background: never block the consumer)."""

    def close(interaction_id: int) -> None:
        tasks.add(asyncio.create_task(_publish_close(commands, interaction_id)))

    return close


async def _publish_close(commands: AbstractExchange, interaction_id: int) -> None:
    body = json.dumps({"interaction_id": interaction_id}).encode()
    await commands.publish(_message(body, f"demo-close-{interaction_id}"), CLOSE_ROUTING_KEY)


async def _publish_all(commands: AbstractExchange, plan: dict[str, int]) -> None:
    """Confirmed publishes, a chunk in flight at a time, with a progress bar."""
    bar = ProgressBar("published", len(plan))
    items = list(plan.items())
    for start in range(0, len(items), PUBLISH_CHUNK):
        chunk = items[start : start + PUBLISH_CHUNK]
        await asyncio.gather(
            *(_publish_create(commands, n, m, s) for n, (m, s) in enumerate(chunk, start))
        )
        bar.update(start + len(chunk))
    bar.finish()


async def _publish_create(
    commands: AbstractExchange, number: int, message_id: str, source_id: int
) -> None:
    body = {
        "email": f"demo{number}@example.com",
        "source_id": source_id,
        "payload": {"text": f"demo interaction {number}"},
    }
    await commands.publish(_message(json.dumps(body).encode(), message_id), CREATE_ROUTING_KEY)


def _message(body: bytes, message_id: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        timestamp=datetime.now(UTC),
        app_id="leadrouter-demo",
    )


async def _await_results(watcher: RoutingWatcher, count: int, timeout_s: float) -> None:
    """Wake on each routing event (no polling) until all arrived or the timeout passes."""
    bar = ProgressBar("routed", count)
    try:
        async with asyncio.timeout(timeout_s):
            while not watcher.complete:
                await watcher.changed.wait()
                watcher.changed.clear()
                bar.update(len(watcher.outcomes))
    except TimeoutError:
        pass
    bar.update(len(watcher.outcomes))
    bar.finish()


def _print_report(config: DemoConfig, outcomes: Sequence[Outcome]) -> None:
    print("\nBy operator (all sources):")
    print(
        render_table(
            ["operator", "configured %", "observed %", "count"], operator_rows(config, outcomes)
        )
    )
    print("\nBy source:")
    headers = ["source", "operator", "weight", "configured %", "observed %", "count"]
    print(render_table(headers, source_rows(config, outcomes)))
