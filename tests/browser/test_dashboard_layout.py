"""The supervisors' page laid out at a laptop's and a wall screen's width, for 3 and 200 operators
with long Cyrillic names: no text box runs into another, names are whole while there is room,
and the per-source title counts every interaction of the window.

The check compares the boxes the browser laid out (text on the charts' canvases is drawn as
HTML labels for this reason). Each test leaves its screenshot in its temporary folder.
"""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Operator, SourceOperatorSetting
from tests.api.helpers import route_new
from tests.browser.conftest import ApiServer, Console
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]
pytestmark = pytest.mark.browser

WIDTHS = {1280: 800, 1920: 1080}
FIRST = ("Александра", "Константин", "Евфросиния", "Вольдемар", "Светлана", "Ярослав")
LAST = ("Преображенская-Кржижановская", "Верхнеднепровский", "Тихомирова-Щербакова")

# Text-bearing elements of the board; each box is compared with every other one.
TEXT = (
    ".tile .label, .tile .value, h2, .legend, .op .name, .op .load, .op .hour, "
    ".queue th, .queue td, .share h3, .share-label, .flow-date"
)

OVERLAPS_JS = """(selector) => {
  const boxes = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const style = getComputedStyle(el);
    // Clipped text (an ellipsis) occupies its element's box; other text its own extent.
    let r = el.getBoundingClientRect();
    if (style.overflow === 'visible' && style.display !== 'block') {
      const range = document.createRange();
      range.selectNodeContents(el);
      r = range.getBoundingClientRect();
    }
    if (r.width && r.height) boxes.push({ el, r });
  }
  const hits = [];
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const a = boxes[i], b = boxes[j];
      if (a.el.contains(b.el) || b.el.contains(a.el)) continue;
      const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      const name = (x) => `${x.el.className}: ${x.el.textContent}`;
      if (w > 1 && h > 1) hits.push(`${name(a)} x ${name(b)}`);
    }
  }
  return hits.slice(0, 10);
}"""

CUT_NAMES_JS = """() => [...document.querySelectorAll('#operators .op .name')]
  .filter((el) => el.scrollWidth > el.clientWidth + 1)
  .map((el) => ({ name: el.textContent, title: el.closest('.op').title }))"""

FREE_TRACKS_JS = """() => {
  const grid = document.getElementById('operators');
  const tracks = getComputedStyle(grid).gridTemplateColumns.split(' ').length;
  return { tracks, cards: grid.children.length };
}"""


def long_name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]} {i:03}"


async def demo_like(sessions: Sessions) -> list[int]:
    """The demo's three sources, three operators with long names, some waiting."""
    ops = [await seed.add_operator(sessions, long_name(i), 40) for i in range(3)]
    sources = [await seed.add_source(sessions, name) for name in ("telegram", "email", "phone")]
    for source, weights in zip(sources, ((50, 30, 20), (40, 60, 0), (0, 70, 30)), strict=True):
        shares = {o: w for o, w in zip(ops, weights, strict=True) if w}
        await seed.set_weights(sessions, source, shares)
    for source in sources:
        await route_new(sessions, source, 40)  # 120 for 120 places: all assigned
    await route_new(sessions, sources[0], 30)  # and these wait
    return sources


async def two_hundred(sessions: Sessions) -> list[int]:
    sources = [await seed.add_source(sessions, f"source-{i}") for i in range(4)]
    async with sessions() as session, session.begin():
        operators = [Operator(name=long_name(i), load_limit=2) for i in range(200)]
        session.add_all(operators)
        await session.flush()
        session.add_all(
            SourceOperatorSetting(source_id=sources[i % 4], operator_id=o.id, weight=10 + i % 7)
            for i, o in enumerate(operators)
        )
    for source in sources:
        await route_new(sessions, source, 100)
    await route_new(sessions, sources[0], 300)
    return sources


async def open_board(context: BrowserContext, api: ApiServer, width: int) -> Page:
    page = await context.new_page()
    await page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    await page.goto(f"{api.url}/dashboard")
    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#shares .share .share-label").first).to_be_visible()
    await page.evaluate("document.fonts.ready")
    return page


async def check(page: Page, shot: Path) -> dict[str, Any]:
    await page.screenshot(path=shot, full_page=True)
    overlaps = await page.evaluate(OVERLAPS_JS, TEXT)
    assert overlaps == [], overlaps
    # The flow chart's date sits apart from its time labels (drawn on the canvas).
    date = await page.locator("#flow .flow-date").bounding_box()
    canvas = await page.locator("#flow canvas").bounding_box()
    assert date is not None and canvas is not None
    above = date["y"] + date["height"] <= canvas["y"] + 1
    assert above or date["y"] >= canvas["y"] + canvas["height"] - 1
    cut = await page.evaluate(CUT_NAMES_JS)
    assert all(c["title"].startswith(c["name"]) for c in cut)  # the whole name on hover
    return {"cut": cut, **await page.evaluate(FREE_TRACKS_JS)}


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_three_operators_long_names_whole_and_nothing_overlaps(
    width: int,
    open_api: ApiServer,
    context: BrowserContext,
    sessions: Sessions,
    console: Console,
    tmp_path: Path,
) -> None:
    await demo_like(sessions)
    page = await open_board(context, open_api, width)
    await expect(page.locator("#waiting-count")).to_have_text("30")

    layout = await check(page, tmp_path / f"dashboard-3-operators-{width}.png")

    assert layout["cut"] == []  # most of the panel is free: no name is cut
    titles = await page.locator("#shares .share h3").all_text_contents()
    assert titles[0].startswith("telegram · 70 in the window")  # 40 assigned + 30 waiting
    telegram = page.locator("#shares .share").first.locator(".share-label")
    assert await telegram.all_text_contents() == [long_name(i) for i in range(3)]  # each named


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_two_hundred_operators_fill_the_panel_and_nothing_overlaps(
    width: int,
    open_api: ApiServer,
    context: BrowserContext,
    sessions: Sessions,
    console: Console,
    tmp_path: Path,
) -> None:
    await two_hundred(sessions)
    page = await open_board(context, open_api, width)
    await expect(page.locator("#operators .op")).to_have_count(200)

    layout = await check(page, tmp_path / f"dashboard-200-operators-{width}.png")

    # A name is cut only when every column of the grid holds a card: no room is left free.
    assert layout["cards"] >= layout["tracks"] >= 2
    titles = await page.locator("#shares .share h3").all_text_contents()
    assert titles[0].startswith("source-0 · 400 in the window")
    assert console.unexpected() == []
