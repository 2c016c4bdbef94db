"""/docs and /redoc work on a closed network: scripts, styles and icons come from the service."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# Any absolute or protocol-relative URL in markup or inline script.
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)
        self._in_script = tag in {"script", "style"}

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline.append(data)


@pytest.fixture(scope="module")
def docs_client() -> TestClient:
    # The pages need no database: no lifespan is run.
    return TestClient(create_app(Settings(env="dev")))


def _references(client: TestClient, page: str) -> _References:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(response.text)
    return parser


@pytest.mark.parametrize("page", PAGES)
def test_page_references_no_external_host(docs_client: TestClient, page: str) -> None:
    html = docs_client.get(page).text
    refs = _references(docs_client, page)
    assert refs.urls, "the page references no assets at all"
    for url in refs.urls:
        assert not urlsplit(url).netloc and not urlsplit(url).scheme, url
    assert EXTERNAL.findall(html) == []


@pytest.mark.parametrize("page", PAGES)
def test_every_referenced_asset_is_served(docs_client: TestClient, page: str) -> None:
    refs = _references(docs_client, page)
    kinds = set()
    for url in refs.urls:
        response = docs_client.get(urljoin(page, url))
        assert response.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        expected = CONTENT_TYPES.get(suffix, "application/json")
        assert response.headers["content-type"].split(";")[0] == expected, url
        assert len(response.content) > 1000, url
        kinds.add(suffix)
    # Swagger UI needs its script and stylesheet; ReDoc its script.
    assert ".js" in kinds
    if page == "/docs":
        assert ".css" in kinds
        assert "/openapi.json" in "".join(refs.inline)
        assert docs_client.get("/openapi.json").status_code == 200


def test_stylesheet_loads_nothing_from_elsewhere(docs_client: TestClient) -> None:
    css = docs_client.get("/docs-assets/swagger-ui.css").text
    imports = re.findall(r"@import|url\(\s*['\"]?(?:https?:)?//", css)
    assert imports == []


def test_docs_routes_stay_out_of_the_openapi_document(docs_client: TestClient) -> None:
    paths = docs_client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
