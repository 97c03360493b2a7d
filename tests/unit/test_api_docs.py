"""Each service serves its API docs pages and every file they load itself: they work offline and behind a proxy."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from ezone_kit.service import create_app

from ezone.services import SERVICES


class AssetReferences(HTMLParser):
    """URLs a page loads: src, href and ReDoc's spec-url attributes, and the URLs its inline scripts pass on."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value for name, value in attrs if name in ("src", "href", "spec-url") and value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls.extend(re.findall(r"""(?:url|oauth2RedirectUrl)['"]?\s*:\s*['"]([^'"]+)['"]""", data))


def referenced_urls(html: str) -> list[str]:
    parser = AssetReferences()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("service", [entry.name for entry in SERVICES])
async def test_api_docs_pages_load_only_same_origin_files_that_the_service_serves(service, page):
    app = create_app(next(entry.definition for entry in SERVICES if entry.name == service))
    origin = "http://ezone.test"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=origin) as client:
        response = await client.get(page)
        assert response.status_code == 200
        urls = [urljoin(f"{origin}{page}", url) for url in referenced_urls(response.text)]

        assert any(url.endswith(".js") for url in urls), f"{page} loads no script: {urls}"
        assert any(url.endswith("/openapi.json") for url in urls), urls
        for url in urls:
            assert urlsplit(url).netloc == "ezone.test", f"{service} {page} loads {url} from another origin"
            assert (await client.get(url)).status_code == 200, f"{service} {page} loads {url}, which is not served"


async def test_api_docs_pages_ask_for_their_files_under_the_public_prefix():
    """Behind deploy/httproute.yaml, /plans/docs reaches the service as /docs with the prefix as its root path."""
    app = create_app(SERVICES[0].definition)
    transport = httpx.ASGITransport(app=app, root_path="/plans")
    async with httpx.AsyncClient(transport=transport, base_url="http://ezone.test") as client:
        urls = referenced_urls((await client.get("/docs")).text)

    assert urls and all(url.startswith("/plans/") for url in urls), urls
