"""The dashboard in real browsers, against a real `leadrouter api` process and a real worker (in
the test's event loop) on the test's broker vhost.

Chromium is Debian's `/usr/bin/chromium` (`apt-get install chromium`), driven by Playwright over
CDP: every test in `test_dashboard.py`. Firefox is Debian's `/usr/bin/firefox-esr` (`apt-get
install firefox-esr`), driven over WebDriver BiDi by `firefox.py` (`test_dashboard_firefox.py`):
Playwright 1.65's Firefox channel sends a BiDi command ESR 153 does not implement yet. `.ci/run`
installs both; Playwright never downloads a browser here. Every Chromium test leaves a
screenshot of its page in its temporary folder (`<test name>.png`), also when it fails: the CI
artefact.
"""

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from schemas.settings import Settings
from tests.ops.conftest import free_port
from tests.support.processes import LEADROUTER, WorkerProcess, worker_env

CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"
TOKEN = "dashboard-test-token"
expect.set_options(timeout=15_000)  # a routed interaction reaches the page within ~1 s

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The page reads aggregates through the same queries on both databases (tests/api covers
    PostgreSQL); the browser runs on SQLite, shared by the API process and the worker."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"] if root else []
        )
        yield browser
        await browser.close()


@dataclass
class Console:
    """What the page said on its console (CSP violations and script errors show up here) and
    every request it made."""

    errors: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        """Errors other than the browser's note of a 401 (the page asking for its token)."""
        return [e for e in self.errors if "status of 401" not in e]


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile per test: its own sessionStorage, so no token carries over."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    yield context
    await context.close()


@pytest.fixture
async def console() -> Console:
    return Console()


@pytest.fixture
async def page(
    context: BrowserContext, console: Console, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Page]:
    """Tests name their API server before `page`: set up first, it stops after the screenshot."""
    page = await context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    page.on("request", lambda r: console.requests.append((r.method, r.url)))
    try:
        yield page
    finally:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
        with contextlib.suppress(Exception):  # a crashed page must not hide the test's failure
            await page.screenshot(path=tmp_path / f"{name}.png", full_page=True)


@dataclass
class ApiServer:
    """`leadrouter api` as a child process on a fixed port; stop and start it again there."""

    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    process: WorkerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        child = await asyncio.create_subprocess_exec(
            LEADROUTER,
            "api",
            "--port",
            str(self.port),
            env=self.env,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        process = WorkerProcess("api", child)
        assert child.stdout is not None and child.stderr is not None
        process._readers = [
            asyncio.create_task(process._read(child.stdout)),
            asyncio.create_task(process._read(child.stderr)),
        ]
        self.process = process
        running = f"Uvicorn running on {self.url} (Press CTRL+C to quit)"
        await process.wait_for(running, within=30)

    async def stop(self) -> int:
        """SIGTERM: a graceful shutdown that ends the open event streams; its exit code."""
        assert self.process is not None
        code = await self.process.stop(within=20)
        self.process = None
        return code

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await self.process.wait(20)


@contextlib.asynccontextmanager
async def api_server(settings: Settings, cwd: Path, token: str | None) -> AsyncIterator[ApiServer]:
    env = worker_env(settings.amqp_url, settings.database_url)
    env.pop("API_TOKEN", None)
    if token is not None:
        env["API_TOKEN"] = token
    server = ApiServer(env, cwd)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[ApiServer]:
    """The API with API_TOKEN set: the page must ask for it."""
    async with api_server(settings, tmp_path, TOKEN) as server:
        yield server


@pytest.fixture
async def open_api(settings: Settings, tmp_path: Path) -> AsyncIterator[ApiServer]:
    """The API without API_TOKEN: every /api/v1 route is open, the page asks for nothing."""
    async with api_server(settings, tmp_path, None) as server:
        yield server


async def log_in(page: Page, api: ApiServer, token: str = TOKEN) -> None:
    """Open the page, give it the token, and wait until its stream is live."""
    await page.goto(f"{api.url}/dashboard")
    await expect(page.locator("#login")).to_be_visible()
    await page.locator("#token").fill(token)
    await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("#board")).to_be_visible()
    await expect(page.locator("#status")).to_have_text("live")
