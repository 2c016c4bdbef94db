"""/docs and /redoc render in a real browser that cannot resolve any host but loopback.

Needs Chromium (Debian package `chromium`); skipped where none is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.context import ServiceContext
from tests.support.live import LiveServer, live_server

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed"),
    pytest.mark.one_database,
]


@pytest.fixture(scope="module")
def server(ctx: ServiceContext, backend: str) -> Iterator[LiveServer]:
    if backend != "sqlite":
        pytest.skip("the documentation pages do not touch the database")
    with live_server(ctx) as running:
        yield running


def _rendered(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, on a closed network."""
    result = subprocess.run(  # noqa: S603 - the installed browser, arguments built here
        [
            str(BROWSER), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}",
            # Every host but loopback is unresolvable, as on a closed government network.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_page_renders_the_operations(server: LiveServer, page: str, tmp_path: Path) -> None:
    dom = _rendered(server.base_url + page, tmp_path)
    # Text that exists only once the script has loaded the spec and drawn the operations.
    for text in ("Refer a person to another agency", "Read a referral as a FHIR R4 Bundle",
                 "/v1/referrals/{referral_id}/assess"):
        assert text in dom, f"{page} did not render {text!r}"


def test_a_code_field_link_opens_the_taxonomy_operation(server: LiveServer, tmp_path: Path) -> None:
    """The link in a code field's description, opened, shows `GET /v1/taxonomy` expanded."""
    spec = server.client().get("/openapi.json").json()
    needs = spec["components"]["schemas"]["AssessIn"]["properties"]["needs"]["description"]
    match = re.search(r"\]\((#/[^)]+)\)", needs)
    assert match, needs
    dom = _rendered(server.base_url + "/docs" + match[1], tmp_path)
    opened = re.findall(r'class="opblock [^"]*is-open[^"]*" id="([^"]+)"', dom)
    assert opened == ["operations-reference_data-get_taxonomy"]
