"""The Indonesian error answers in the README and the integrating page are the service's own."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import Api

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/integrating/index.md")
# A curl in Indonesian with its body, then the answer it documents.
EXAMPLE = re.compile(
    r'curl -s "\$BASE(?P<path>/v1/referrals)" [^\n]*-H "Accept-Language: id".*?'
    r"-d '(?P<body>[^']*)'\n```\n\n```json\n(?P<answer>.*?)\n```",
    re.DOTALL,
)
JSON_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def _example(page: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    found = EXAMPLE.search((ROOT / page).read_text())
    assert found, f"{page} shows no Indonesian error answer"
    return found["path"], json.loads(found["body"]), json.loads(found["answer"])


@pytest.mark.parametrize("page", PAGES)
def test_the_documented_indonesian_answer_is_what_the_service_answers(
    lpsk: Api, page: str
) -> None:
    path, body, documented = _example(page)
    response = lpsk.http.post(path, json=body, headers=lpsk.headers(**{"Accept-Language": "id"}))
    assert response.headers["Content-Language"] == "id"
    assert response.status_code == documented["status"]
    assert response.json() == documented


def test_the_documented_not_found_is_what_the_service_answers(lpsk: Api) -> None:
    blocks = [json.loads(b) for b in JSON_BLOCK.findall((ROOT / PAGES[1]).read_text())]
    (documented,) = [b for b in blocks if b.get("status") == 404]
    response = lpsk.http.get(
        f"/v1/referrals/{uuid.uuid4()}", headers=lpsk.headers(**{"Accept-Language": "id"})
    )
    assert response.json() == documented
