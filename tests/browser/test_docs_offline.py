"""`/docs` renders Swagger UI in Chromium with every request to another host refused, as on a
machine without internet access: its script and style come from the API itself."""

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import ApiServer, Console

pytestmark = pytest.mark.browser


async def test_swagger_ui_renders_with_no_network_beyond_the_api(
    open_api: ApiServer, page: Page, console: Console
) -> None:
    refused: list[str] = []

    async def only_the_api(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_the_api)
    await page.goto(f"{open_api.url}/docs")

    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("leadrouter")
    operations = page.locator(".swagger-ui .opblock")
    await expect(operations.first).to_be_visible()
    assert await operations.count() >= 20
    assert refused == []
    assert console.unexpected() == []
    assert {urlsplit(url).hostname for _, url in console.requests} == {"127.0.0.1"}
