"""The supervisors' page, live: what a wall screen shows as interactions come and go.

Each test awaits what the page shows (`expect(...)` retries until it holds), never a fixed
sleep: a change reaches the page through the worker, the database and the API's event stream.
"""

import re

import pytest
from playwright.async_api import Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Operator, SourceOperatorSetting
from tests.api.helpers import route_new
from tests.browser.conftest import TOKEN, ApiServer, Console, log_in
from tests.support import seed
from tests.support.amqp import Bot, Inbox, Received
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
pytestmark = pytest.mark.browser


async def one_operator(sessions: Sessions, limit: int) -> tuple[int, int]:
    source = await seed.add_source(sessions, "telegram")
    ann = await seed.add_operator(sessions, "Ann Example", limit)
    await seed.set_weights(sessions, source, {ann: 10})
    return source, ann


def card(page: Page, operator_id: int) -> Locator:
    return page.locator(f'#operators .op[data-operator-id="{operator_id}"]')


def queue_row(page: Page, source_id: int) -> Locator:
    return page.locator(f'#queue tr[data-source-id="{source_id}"]')


def of_type(events: list[Received], kind: str) -> list[Received]:
    return [e for e in events if e.body.get("type") == kind]


async def mark_page(page: Page) -> None:
    """A flag a reload would lose: the page must update itself."""
    await page.evaluate("window.notReloaded = true")


async def still_the_same_page(page: Page) -> bool:
    return bool(await page.evaluate("window.notReloaded === true"))


async def test_the_page_asks_for_the_token_once_per_session(
    api: ApiServer, page: Page, sessions: Sessions, console: Console
) -> None:
    source, ann = await one_operator(sessions, 3)

    await log_in(page, api)

    await expect(card(page, ann).locator(".name")).to_have_text("Ann Example")
    await expect(card(page, ann).locator(".load")).to_have_text("0 / 3")
    await expect(queue_row(page, source).locator(".name")).to_have_text("telegram")
    await expect(page.locator("#shares .share")).to_have_count(1)
    await expect(page.locator("#broker")).to_have_text("ok")
    await expect(page.locator("#dead-letters")).to_have_text("0")
    await page.reload()  # the same tab: the token is kept, nothing is asked again
    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(card(page, ann).locator(".load")).to_have_text("0 / 3")
    assert console.unexpected() == []


async def test_interactions_move_the_bars_and_counters_without_a_reload(
    api: ApiServer,
    page: Page,
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
    console: Console,
) -> None:
    source, ann = await one_operator(sessions, 2)
    await log_in(page, api)
    await mark_page(page)
    bar = card(page, ann).locator(".bar .assigned")
    await expect(card(page, ann).locator(".load")).to_have_text("0 / 2")

    await bot.create("a@example.com", source)
    await bot.create("b@example.com", source)
    first, _ = await events.take(2)

    await expect(card(page, ann).locator(".load")).to_have_text("2 / 2")
    await expect(card(page, ann).locator(".hour")).to_have_text("2 / h")
    await expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    await expect(card(page, ann)).to_have_class(re.compile(r"\bfull\b"))
    await expect(page.locator("#busy")).to_have_text("1 / 1")
    await expect(page.locator("#shares .share h3")).to_have_text("telegram · 2 in the window")

    await bot.close(first.body["interaction_id"])  # closing one frees its place on the bar
    await events.next()

    await expect(card(page, ann).locator(".load")).to_have_text("1 / 2")
    await expect(bar).to_have_attribute("style", re.compile(r"width: 50%"))
    await expect(card(page, ann)).not_to_have_class(re.compile(r"\bfull\b"))
    assert await still_the_same_page(page)
    assert console.unexpected() == []
    assert {method for method, _ in console.requests} == {"GET"}  # the page only reads


async def test_a_waiting_interaction_leaves_the_queue_when_capacity_frees(
    api: ApiServer, page: Page, sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, ann = await one_operator(sessions, 1)
    await log_in(page, api)
    await mark_page(page)
    row = queue_row(page, source)
    await expect(row.locator(".count")).to_have_text("0")

    await bot.create("first@example.com", source)
    await bot.create("second@example.com", source)
    routed = await events.take(2)

    await expect(page.locator("#waiting-count")).to_have_text("1")
    await expect(row.locator(".count")).to_have_text("1")
    await expect(row.locator(".wait")).to_have_text(re.compile(r"^\d+ s$"))
    await expect(row).not_to_have_class(re.compile(r"\bidle\b"))
    await expect(card(page, ann).locator(".load")).to_have_text("1 / 1")

    [assigned] = of_type(routed, "interaction.assigned")
    await bot.close(assigned.body["interaction_id"])
    drained = await events.take(2)  # closed, and the waiting one assigned
    assert len(of_type(drained, "interaction.assigned")) == 1

    await expect(page.locator("#waiting-count")).to_have_text("0")
    await expect(row.locator(".count")).to_have_text("0")
    await expect(row.locator(".wait")).to_have_text("–")
    await expect(row).to_have_class(re.compile(r"\bidle\b"))
    await expect(card(page, ann).locator(".load")).to_have_text("1 / 1")
    await expect(card(page, ann).locator(".hour")).to_have_text("2 / h")
    assert await still_the_same_page(page)


async def test_the_stream_reconnects_by_itself_after_the_api_restarts(
    api: ApiServer, page: Page, sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, ann = await one_operator(sessions, 5)
    await log_in(page, api)
    await mark_page(page)

    assert await api.stop() == 0  # graceful: the open stream does not hold the shutdown up
    await expect(page.locator("#status")).not_to_have_text("live")
    await api.start()  # the same port

    await expect(page.locator("#status")).to_have_text("live", timeout=45_000)
    await bot.create("after-restart@example.com", source)
    await events.next()
    await expect(card(page, ann).locator(".load")).to_have_text("1 / 5")
    assert await still_the_same_page(page)


async def test_when_the_stream_keeps_failing_the_page_polls_snapshots(
    api: ApiServer, page: Page, sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, ann = await one_operator(sessions, 5)
    await page.route("**/api/v1/dashboard/stream*", lambda route: route.abort())  # a bad proxy
    await log_in_without_stream(page, api)
    await mark_page(page)

    await expect(page.locator("#status")).to_have_text("polling (stream unavailable)")
    await bot.create("polled@example.com", source)
    await events.next()

    await expect(card(page, ann).locator(".load")).to_have_text("1 / 5")
    await page.unroute("**/api/v1/dashboard/stream*")  # the stream works again: back to live
    await expect(page.locator("#status")).to_have_text("live", timeout=30_000)
    assert await still_the_same_page(page)


async def log_in_without_stream(page: Page, api: ApiServer) -> None:
    await page.goto(f"{api.url}/dashboard")
    await page.locator("#token").fill(TOKEN)
    await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("#board")).to_be_visible()


async def test_without_the_token_the_page_shows_a_login_and_no_data(
    api: ApiServer, page: Page, sessions: Sessions
) -> None:
    await seed.add_operator(sessions, "Secret Sam", 4)

    await page.goto(f"{api.url}/dashboard")

    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#board")).to_be_hidden()
    await expect(page.locator("#status")).to_have_text("token needed")
    await page.locator("#token").fill("not-" + TOKEN)
    await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("#login-error")).to_have_text("That token was refused.")
    await expect(page.locator("#board")).to_be_hidden()
    assert await page.locator("#operators .op").count() == 0
    assert "Secret Sam" not in await page.content()


async def test_without_api_token_the_page_opens_directly(
    open_api: ApiServer, page: Page, sessions: Sessions
) -> None:
    _, ann = await one_operator(sessions, 3)

    await page.goto(f"{open_api.url}/dashboard")

    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#forget")).to_be_hidden()
    await expect(card(page, ann).locator(".load")).to_have_text("0 / 3")


async def test_200_operators_and_1000_waiting_stay_light(
    api: ApiServer, page: Page, sessions: Sessions, console: Console
) -> None:
    sources = [await seed.add_source(sessions, f"source-{i}") for i in range(4)]
    async with sessions() as session, session.begin():
        operators = [Operator(name=f"Operator {i:03}", load_limit=2) for i in range(200)]
        session.add_all(operators)
        await session.flush()
        session.add_all(
            SourceOperatorSetting(source_id=sources[i % 4], operator_id=o.id, weight=10)
            for i, o in enumerate(operators)
        )
    for source in sources:
        await route_new(sessions, source, 100)  # every operator gets two: all at their limit
    for _ in range(4):
        await route_new(sessions, sources[0], 250)  # and these wait

    await log_in(page, api)

    await expect(page.locator("#operators .op")).to_have_count(200)
    await expect(page.locator("#waiting-count")).to_have_text("1000")
    await expect(queue_row(page, sources[0]).locator(".count")).to_have_text("1000")
    await expect(page.locator("#busy")).to_have_text("200 / 200")
    elements = await page.evaluate("document.getElementsByTagName('*').length")
    assert elements < 2500, elements  # a handful per operator, none per waiting interaction
    assert console.unexpected() == []


async def test_an_overdue_source_is_highlighted_and_offers_show_on_the_bar(
    api: ApiServer, page: Page, sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    """A source whose oldest waiting interaction has waited past its `max_wait_s` turns red
    in the queue; an offered interaction shows in amber on its operator's bar."""
    timed = await seed.add_source(sessions, "timed", max_wait_s=1)
    nobody = await seed.add_operator(sessions, "On a break", 0)
    await seed.set_weights(sessions, timed, {nobody: 10})
    offering = await seed.add_source(sessions, "offering", accept_timeout_s=600)
    bea = await seed.add_operator(sessions, "Bea Example", 2)
    await seed.set_weights(sessions, offering, {bea: 10})
    await log_in(page, api)
    row = queue_row(page, timed)
    await expect(row).not_to_have_class(re.compile(r"\boverdue\b"))

    await bot.create("waits@example.com", timed)
    await bot.create("offered@example.com", offering)
    await events.take(2)

    await expect(row.locator(".count")).to_have_text("1")
    await expect(row).to_have_class(re.compile(r"\boverdue\b"))  # once a second has passed
    await expect(row.locator(".limit")).to_have_text("1 s")
    await expect(card(page, bea).locator(".load")).to_have_text("1 / 2 (1 offered)")
    offered_bar = card(page, bea).locator(".bar .offered")
    await expect(offered_bar).to_have_attribute("style", re.compile(r"width: 50%"))
    await expect(card(page, bea).locator(".bar .assigned")).to_have_attribute(
        "style", re.compile(r"width: 0%")
    )


async def test_the_rate_falls_to_zero_when_nothing_happens(
    api: ApiServer, page: Page, sessions: Sessions, console: Console
) -> None:
    """An unchanged snapshot is not sent again: the tile must fall to 0 by the page's clock."""
    source, _ = await one_operator(sessions, 1000)
    await log_in(page, api)
    await expect(page.locator("#rate")).to_have_text("0.0")

    await route_new(sessions, source, 50)  # a burst, then silence

    await expect(page.locator("#rate")).to_have_text("5.0")
    await expect(page.locator("#rate")).to_have_text("0.0", timeout=15_000)
    assert console.unexpected() == []
