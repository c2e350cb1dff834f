"""The supervisors' page in Firefox ESR (over WebDriver BiDi, `firefox.py`): it asks for the
token, goes live, follows interactions without a reload, and highlights an overdue source;
the same page the Chromium tests drive, in the other engine a wall screen may run."""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser.conftest import FIREFOX, TOKEN, ApiServer
from tests.browser.firefox import Firefox, launch
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
pytestmark = pytest.mark.browser


@pytest.fixture
async def firefox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Firefox]:
    if shutil.which(FIREFOX) is None:
        pytest.skip(f"no {FIREFOX}: apt-get install -y firefox-esr (.ci/run does)")
    async with launch(FIREFOX) as browser:
        try:
            yield browser
        finally:
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
            await browser.screenshot(tmp_path / f"{name}.png")


def text_of(selector: str) -> str:
    """A JavaScript expression: the element's text, or null while it is not there."""
    return f"document.querySelector({selector!r})?.textContent ?? null"


def load_of(operator_id: int) -> str:
    return text_of(f'#operators .op[data-operator-id="{operator_id}"] .load')


async def test_firefox_asks_for_the_token_then_follows_interactions_live(
    api: ApiServer,
    firefox: Firefox,
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
) -> None:
    source = await seed.add_source(sessions, "telegram")
    ann = await seed.add_operator(sessions, "Ann Example", 2)
    await seed.set_weights(sessions, source, {ann: 10})

    await firefox.goto(f"{api.url}/dashboard")
    await firefox.wait_for("!document.querySelector('#login').hidden")
    assert await firefox.evaluate(text_of("#operators")) in (None, "")  # no data before the token
    await firefox.evaluate(
        f"document.querySelector('#token').value = {TOKEN!r};"
        "document.querySelector('#login-form button[type=submit]').click()"
    )
    await firefox.wait_for(f"{text_of('#status')} === 'live'")
    await firefox.wait_for(f"{load_of(ann)} === '0 / 2'")
    await firefox.evaluate("window.notReloaded = true")

    await bot.create("a@example.com", source)
    await bot.create("b@example.com", source)
    first, _ = await events.take(2)
    await firefox.wait_for(f"{load_of(ann)} === '2 / 2'")
    card = f'#operators .op[data-operator-id="{ann}"]'
    await firefox.wait_for(f"document.querySelector({card!r}).classList.contains('full')")

    await bot.close(first.body["interaction_id"])
    await events.next()
    await firefox.wait_for(f"{load_of(ann)} === '1 / 2'")
    assert await firefox.evaluate("window.notReloaded === true")  # updated in place


async def test_firefox_highlights_an_overdue_source(
    open_api: ApiServer,
    firefox: Firefox,
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
) -> None:
    timed = await seed.add_source(sessions, "timed", max_wait_s=1)
    nobody = await seed.add_operator(sessions, "On a break", 0)
    await seed.set_weights(sessions, timed, {nobody: 10})
    row = f'#queue tr[data-source-id="{timed}"]'

    await firefox.goto(f"{open_api.url}/dashboard")
    await firefox.wait_for(f"{text_of('#status')} === 'live'")
    await firefox.wait_for(f"{text_of(row + ' .count')} === '0'")
    assert not await firefox.evaluate(
        f"document.querySelector({row!r}).classList.contains('overdue')"
    )

    await bot.create("waits@example.com", timed)
    await events.next()

    await firefox.wait_for(f"{text_of(row + ' .count')} === '1'")
    await firefox.wait_for(f"document.querySelector({row!r}).classList.contains('overdue')")
