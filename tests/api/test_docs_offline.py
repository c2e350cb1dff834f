"""`/docs` and `/redoc` work without internet: every script, style and icon they load is served
by the API itself (fastapi-offline's copy of Swagger UI and ReDoc), none from a CDN."""

import re

import pytest
from httpx import AsyncClient

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_their_own_assets(client: AsyncClient, page: str) -> None:
    html = (await client.get(f"http://localhost{page}")).text

    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets), html
    assert "://" not in html.replace("window.location.origin", ""), html
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        response = await client.get(f"http://localhost{asset}")
        assert response.status_code == 200, asset
        media = response.headers["content-type"].split(";")[0]
        assert media == TYPES[asset[asset.rindex(".") :]], (asset, media)
        assert len(response.content) > 1000, asset
    assert '"/openapi.json"' in html or "'/openapi.json'" in html
