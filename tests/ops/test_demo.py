"""`leadrouter demo` against an in-process worker, on SQLite (the default set-up) and PostgreSQL."""

import re

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.demo_setup import SAMPLE_OPERATORS
from messaging.topology import CREATE_QUEUE
from tests.ops.conftest import CliRunner
from tests.support import seed
from tests.support.amqp import Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
COUNT = 90


def operator_table(stdout: str) -> dict[str, tuple[float, float, int]]:
    """name -> (configured %, observed %, count) from the 'By operator' table."""
    section = stdout.split("By operator (all sources):")[1].split("By source:")[0]
    rows = re.findall(r"^(.+?) \(#\d+\)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", section, re.MULTILINE)
    return {name: (float(c), float(o), int(n)) for name, c, o, n in rows}


async def test_demo_seeds_publishes_and_prints_the_distribution(
    sessions: Sessions, worker: Worker, events: Inbox, cli: CliRunner
) -> None:
    result = await cli("demo", "-n", str(COUNT), "--timeout", "60")
    await events.take(2 * COUNT, within=60)  # every assigned event and its close

    assert result.code == 0, result.stderr
    assert "created the sample operators, sources and weights" in result.stdout
    assert f"published    [{'#' * 30}] {COUNT}/{COUNT}" in result.stderr
    table = operator_table(result.stdout)
    assert set(table) == set(SAMPLE_OPERATORS)
    assert sum(n for _, _, n in table.values()) == COUNT
    for configured, observed, _ in table.values():
        assert abs(configured - observed) < 20  # 90 draws: loose, but catches a broken router
    for source in ("telegram", "email", "phone"):
        assert source in result.stdout.split("By source:")[1]
    assert sum(o.current_load for o in (await seed.operators(sessions)).values()) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_demo_uses_existing_configuration(
    sessions: Sessions, worker: Worker, cli: CliRunner
) -> None:
    web = await seed.add_source(sessions, "web")
    ann = await seed.add_operator(sessions, "Ann", 100)
    await seed.set_weights(sessions, web, {ann: 10})

    result = await cli("demo", "-n", "10", "--keep-open")

    assert result.code == 0, result.stderr
    assert "created the sample" not in result.stdout
    assert operator_table(result.stdout) == {"Ann": (100.0, 100.0, 10)}
    assert (await seed.operators(sessions))[ann].current_load == 10


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_demo_without_a_worker_says_so(channel: AbstractChannel, cli: CliRunner) -> None:
    result = await cli("demo", "-n", "5")

    assert result.code == 2
    assert "no worker consumes interactions.create" in result.stderr


async def test_contact_centre_scenario_shows_each_policy_happening(
    sessions: Sessions, worker: Worker, cli: CliRunner
) -> None:
    result = await cli("demo", "--scenario", "contact-centre")

    assert result.code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"^\s*\d+\.\d ", line)]
    happened = [(row[1], row[3]) for row in rows]  # (event, lead)
    assert ("assigned", "anna") in happened
    assert any(row[1] == "assigned" and row[3] == "anna" and row[-1] == "sticky" for row in rows)
    assert ("overdue", "dmitry") in happened and ("overdue", "elena") in happened
    drained = [row[3] for row in rows if row[1] == "assigned" and row[-1] == "drain"]
    assert drained == ["elena", "dmitry"]  # priority 9 before the older priority 0
    assert [e for e, lead in happened if lead == "fedor"] == [
        "offered",
        "offer_expired",
        "offered",
        "accepted",
        "closed",
    ]
    assert sum(o.current_load for o in (await seed.operators(sessions)).values()) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_scenario_leaves_no_trap_for_the_plain_demo(
    sessions: Sessions, worker: Worker, cli: CliRunner
) -> None:
    """Its operators (load limit 1) go inactive and its sources are left out: a plain demo on
    the same database seeds its sample set-up, routes all 200 and waits for none."""
    scenario = await cli("demo", "--scenario", "contact-centre")
    assert scenario.code == 0, scenario.stderr
    theirs = {o.id: o for o in (await seed.operators(sessions)).values()}
    assert theirs and not any(o.active for o in theirs.values())

    result = await cli("demo", "-n", "200", "--timeout", "90")

    assert result.code == 0, result.stdout + result.stderr
    assert "created the sample operators, sources and weights" in result.stdout
    table = operator_table(result.stdout)
    assert set(table) == set(SAMPLE_OPERATORS)
    assert sum(n for _, _, n in table.values()) == 200
    assert "(waiting)" not in result.stdout
    assert "contact-centre-" not in result.stdout.split("By source:")[1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_offered_interactions_count_as_routed(
    sessions: Sessions, worker: Worker, cli: CliRunner
) -> None:
    calls = await seed.add_source(sessions, "calls", accept_timeout_s=600)
    ann = await seed.add_operator(sessions, "Анна Кузнецова", 100)
    await seed.set_weights(sessions, calls, {ann: 10})

    result = await cli("demo", "-n", "5", "--keep-open", "--timeout", "60")

    assert result.code == 0, result.stdout + result.stderr
    assert operator_table(result.stdout) == {"Анна Кузнецова": (100.0, 100.0, 5)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_timeout_says_what_the_demo_waited_for(
    sessions: Sessions, channel: AbstractChannel, cli: CliRunner
) -> None:
    """A consumer that never answers stands in for a stuck worker."""
    web = await seed.add_source(sessions, "web")
    ann = await seed.add_operator(sessions, "Ann", 100)
    await seed.set_weights(sessions, web, {ann: 10})
    stuck = await channel.get_queue(CREATE_QUEUE)

    async def take_and_forget(_message: AbstractIncomingMessage) -> None:
        """Takes each create and never acks it."""

    await stuck.consume(take_and_forget)

    result = await cli("demo", "-n", "3", "--timeout", "2")

    assert result.code == 1
    assert re.search(
        r"3 of 3 interactions got no routing event \(interaction\.assigned, \.offered, "
        r"\.accepted or \.waiting\) within 2 s, the first message_id demo-\w+-0: "
        r"is the worker running",
        result.stdout,
    ), result.stdout
