"""Schemathesis over every operation of openapi/openapi.json, in process, as each agency.

The operations are read from the committed spec at collection time, so a route added later is
fuzzed without touching this file. Each example is sent with a real token of one of the three
agencies (drawn per example); for paths with a referral id, about half the examples name a
referral that exists: one of the caller's own, or one between the two other agencies (which
must answer 404). Every built-in check is on: no server error, status codes, content types,
headers and bodies as documented, negative data rejected, positive data accepted (or refused
only for a rule the schema cannot state, see _config), missing auth not ignored.

RUJUKAN_FUZZ_EXAMPLES sets the examples per operation and generation mode (`make fuzz` raises it).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.support import AGENCIES, Api, Party

pytestmark = pytest.mark.fuzz

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("RUJUKAN_FUZZ_EXAMPLES", "10"))
_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


# Schema-valid requests that the service may still refuse, each for a rule the schema cannot
# state: 412/428 (If-Match is a precondition, not a field) and 422 for rules that need the
# database (taxonomy codes and agencies are data, not enums), span fields (a decline reason only
# with `declined`, a reveal reason with `reveal=identity`) or read an opaque cursor.
def _config(token: str) -> schemathesis.Config:
    # The token goes through Schemathesis' own auth, so that a negative case that drops the
    # Authorization header is sent without it (and must be refused).
    return schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": token}}},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", 401, 403, 404, 409, 412, 422, 428, 429]
                }
            },
            # RFC 6749 §5.2: the token endpoint answers every request error with 400.
            "operations": [
                {
                    "include-operation-id": "issue_token",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": ["2xx", 400, 401, 429]}
                    },
                }
            ],
        }
    )


def _operations() -> list[tuple[str, str, bool]]:
    """(method, path, whether it takes any input that negative data could break)."""
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return [
        (method.upper(), path, bool(op.get("parameters") or op.get("requestBody")))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    ]


OPERATIONS = _operations()
SENT: Counter[str] = Counter()
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path, takes_input in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if takes_input or mode is GenerationMode.POSITIVE
]


@pytest.fixture(scope="module", autouse=True)
def report_examples() -> Iterator[None]:
    """Say how many generated requests were checked (shown with -s)."""
    SENT.clear()
    yield
    print(f"\nschemathesis: {SENT.total()} requests over {len(SENT)} operation modes")


@pytest.fixture(scope="module")
def api_schemas(app, parties: dict[str, Party]):  # type: ignore[no-untyped-def]
    """Per agency: the committed spec, bound to the in-process ASGI app, with its token."""
    schemas = {}
    for agency in AGENCIES:
        schema = schemathesis.openapi.from_path(SPEC_PATH, config=_config(parties[agency].token))
        schema.app = app
        schemas[agency] = schema
    return schemas


@pytest.fixture(scope="module")
def known_referrals(parties: dict[str, Party], http) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """One referral between each ordered pair of agencies: (id, sender, receiver)."""
    made = []
    for sender in AGENCIES:
        for receiver in AGENCIES:
            if sender == receiver:
                continue
            body = Api(http, parties[sender]).create_ok(receiver)
            made.append({"id": body["id"], "parties": {sender, receiver}})
    return made


def test_every_served_operation_is_fuzzed(app) -> None:  # type: ignore[no-untyped-def]
    """The committed spec lists exactly the operations the app serves (none escapes fuzzing)."""
    served = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in _METHODS
    }
    assert served == {(method, path) for method, path, _ in OPERATIONS}
    assert len(OPERATIONS) >= 19


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms_to_the_spec(  # type: ignore[no-untyped-def]
    api_schemas,
    known_referrals: list[dict[str, Any]],
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    strategies = {
        agency: schema[path][method].as_strategy(generation_mode=mode)
        for agency, schema in api_schemas.items()
    }
    names_referral = "{referral_id}" in path

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.environ.get("RUJUKAN_FUZZ_RANDOM") is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        drawn=st.sampled_from(AGENCIES).flatmap(
            lambda agency: strategies[agency].map(lambda case: (agency, case))
        ),
        existing=st.one_of(st.none(), st.sampled_from(known_referrals)),
    )
    def run(drawn, existing: dict[str, Any] | None) -> None:  # type: ignore[no-untyped-def]
        agency, case = drawn
        if names_referral and existing is not None and mode is GenerationMode.POSITIVE:
            case.path_parameters = {**(case.path_parameters or {}), "referral_id": existing["id"]}
        response = case.call_and_validate()
        SENT[f"{method} {path} {mode.value}"] += 1
        foreign = existing is not None and agency not in existing["parties"]
        if names_referral and foreign and mode is GenerationMode.POSITIVE:
            # A body or parameter that fails validation is refused before the lookup.
            assert response.status_code in (404, 422), (
                f"{agency} reached a referral between {existing['parties']}: "
                f"{response.status_code}"
            )

    run()
