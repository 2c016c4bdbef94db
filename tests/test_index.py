"""GET / points a newcomer to the documentation and the endpoints to start from."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service import __version__

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database


def test_the_root_is_a_json_index_without_a_token(http: TestClient) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    index = response.json()
    assert index["name"] == "Rujukan"
    assert index["version"] == __version__
    links = {rel: link["href"] for rel, link in index["links"].items()}
    assert links == {
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/healthz",
        "ready": "/readyz",
        "jwks": "/.well-known/jwks.json",
        "token": "/oauth/token",
        "taxonomy": "/v1/taxonomy",
    }


def test_every_link_of_the_index_answers(http: TestClient) -> None:
    for rel, link in http.get("/").json()["links"].items():
        response = http.get(link["href"])
        # The token endpoint takes POST; the taxonomy needs a token.
        expected = {"token": 405, "taxonomy": 401}.get(rel, 200)
        assert response.status_code == expected, (rel, response.text)


def test_the_index_is_not_an_operation_of_the_api(http: TestClient) -> None:
    assert "/" not in http.get("/openapi.json").json()["paths"]
