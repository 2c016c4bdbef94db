"""Swagger UI alone is enough to call the API: Authorize with a client's id and secret (the
OAuth 2.0 client-credentials flow of the OpenAPI document), then try an operation from the page.

Drives Debian's Chromium with Playwright, on a closed network (every host but loopback is
unresolvable); skipped where no Chromium is installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from service.context import ServiceContext
from tests.support import Party
from tests.support.live import LiveServer, live_server

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed"),
    pytest.mark.one_database,
]
# Flags for a headless Chromium on a machine without outside network access.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="module")
def server(ctx: ServiceContext, backend: str) -> Iterator[LiveServer]:
    if backend != "sqlite":
        pytest.skip("the documentation pages do not depend on the database")
    with live_server(ctx) as running:
        yield running


def test_authorize_with_client_credentials_then_try_an_operation(
    server: LiveServer, parties: dict[str, Party]
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    party = parties["KEMENSOS"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BROWSER, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{server.base_url}/docs")

            page.locator("button.authorize").first.click()
            dialog = page.locator(".dialog-ux .modal-ux")
            # The client-credentials form: a client id and secret, no token to paste.
            oauth = dialog.locator(".auth-container").filter(has_text="clientCredentials")
            oauth.locator("input[data-name=clientId]").fill(party.client_id)
            oauth.locator("input[data-name=clientSecret]").fill(party.secret)
            oauth.locator("button.authorize").click()
            # Swagger UI fetched a token from /oauth/token: the scheme shows as authorized.
            sync_api.expect(oauth.get_by_text("Authorized", exact=True)).to_be_visible()
            dialog.locator("button.btn-done").first.click()

            operation = page.locator('[id$="-get_taxonomy"]')
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            operation.locator("button.execute").click()

            live = operation.locator(".live-responses-table .response")
            sync_api.expect(live.locator(".response-col_status").first).to_have_text("200")
            body = live.locator(".response-col_description").first.inner_text()
            assert "KORBAN_KEKERASAN" in body and "service_types" in body
        finally:
            browser.close()
