"""Schemathesis over every operation of openapi/openapi.json, in process, as each agency.

The operations are read from the committed spec at collection time, so a route added later is
fuzzed without touching this file. Each example is sent with a real token of one of the three
agencies (drawn per example); for paths with a referral id, about half the examples name a
referral that exists: one of the caller's own, or one between the two other agencies (which
must answer 404). Every built-in check is on: no server error, status codes, content types,
headers and bodies as documented, negative data rejected, positive data accepted (or refused
only for a rule the schema cannot state, see _config), missing auth not ignored.

Beside what Schemathesis generates from the schema, the kinds of input that once made the
service answer 500 are mixed in: dates and times at the ends of the calendar (as the `date` and
`date-time` formats), cursors holding huge or non-ASCII numbers or such times, and NUL
characters in body text. `test_hostile_values_are_refused_everywhere` also sends each of them
to every parameter and body field where it fits, so none depends on the draw.

RUJUKAN_FUZZ_EXAMPLES sets the examples per operation and generation mode (`make fuzz` raises it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
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
from tests.support.hostile import (
    EXTREME_DAYS,
    EXTREME_TIMES,
    HOSTILE_CURSORS,
    NUL,
    date_times,
    dates,
)

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
    return [
        (method.upper(), path, bool(op.get("parameters") or op.get("requestBody")))
        for path, item in SPEC["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    ]

# ---- Input of the kinds that once made the service fail ---------------------------------------

schemathesis.openapi.format("date-time", date_times())
schemathesis.openapi.format("date", dates())


def _text_leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where a JSON value holds text (each string, in objects and lists)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _text_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_leaves(item, (*path, index))


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    """The item of a JSON value at `path`."""
    for key in path:
        value = value[key]
    return value


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of the JSON value with the item at `path` replaced."""
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    _at(copy, path[:-1])[path[-1]] = new
    return copy


def _is_time(text: str) -> bool:
    try:
        dt.date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


SPEC = json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _query_cursors(method: str, path: str) -> list[str]:
    """The operation's free-text query parameters: opaque cursors and positions."""
    names = []
    for parameter in SPEC["paths"][path][method.lower()].get("parameters", []):
        schema = json.dumps(parameter.get("schema", {}))
        if parameter["in"] == "query" and not any(
            word in schema for word in ('"pattern"', '"enum"', '"const"', '"format"', "integer")
        ):
            names.append(parameter["name"])
    return names


Location = list[str | int] | None
Hostile = tuple[dict[str, str], Any, Location]


def _hostile_requests(method: str, path: str) -> list[Hostile]:
    """(query, body, the field a 422 must name) for each hostile value that fits somewhere
    in the operation: extreme times in date and time parameters and body fields, hostile
    cursors in cursor parameters, a NUL character in each text field of the body's example."""
    operation = SPEC["paths"][path][method.lower()]
    found: list[Hostile] = []
    for parameter in operation.get("parameters", []):
        name, schema = parameter["name"], json.dumps(parameter.get("schema", {}))
        if parameter["in"] != "query":
            continue
        if '"date-time"' in schema or '"date"' in schema:
            extremes = EXTREME_TIMES if '"date-time"' in schema else EXTREME_DAYS
            found += [({name: value}, None, ["query", name]) for value in extremes]
        elif name in _query_cursors(method, path):
            # Which check refuses a hostile cursor is the service's business; a 4xx it must be.
            found += [({name: value}, None, None) for value in HOSTILE_CURSORS]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        ref = json.dumps(content["schema"]).split('"#/components/schemas/')[1].split('"')[0]
        example = SPEC["components"]["schemas"][ref]["examples"][0]
        for leaf in _text_leaves(example):
            value = _at(example, leaf)
            found.append(({}, _replaced(example, leaf, f"{value}{NUL}"), ["body", *leaf]))
            if _is_time(value):
                extremes = EXTREME_TIMES if "T" in value else EXTREME_DAYS
                found += [({}, _replaced(example, leaf, e), ["body", *leaf]) for e in extremes]
    return found
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
    cursors = _query_cursors(method, path)

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
        cursor=st.one_of(st.none(), st.sampled_from(HOSTILE_CURSORS)),
        nul_at=st.one_of(st.none(), st.integers(min_value=0, max_value=63)),
    )
    def run(  # type: ignore[no-untyped-def]
        drawn, existing: dict[str, Any] | None, cursor: str | None, nul_at: int | None
    ) -> None:
        agency, case = drawn
        if names_referral and existing is not None and mode is GenerationMode.POSITIVE:
            case.path_parameters = {**(case.path_parameters or {}), "referral_id": existing["id"]}
        tampered = False
        if cursor is not None and cursors:
            case.query = {**(case.query or {}), **dict.fromkeys(cursors, cursor)}
            tampered = True
        leaves = list(_text_leaves(case.body)) if isinstance(case.body, dict | list) else []
        if nul_at is not None and leaves:
            where = leaves[nul_at % len(leaves)]
            case.body = _replaced(case.body, where, f"{_at(case.body, where)}{NUL}")
            tampered = True
        response = case.call_and_validate()
        SENT[f"{method} {path} {mode.value}"] += 1
        if tampered:
            assert 400 <= response.status_code < 500, response.text
        foreign = existing is not None and agency not in existing["parties"]
        if names_referral and foreign and mode is GenerationMode.POSITIVE:
            # A body or parameter that fails validation is refused before the lookup.
            assert response.status_code in (404, 422), (
                f"{agency} reached a referral between {existing['parties']}: "
                f"{response.status_code}"
            )

    run()


HOSTILE = {
    (method, path): requests
    for method, path, _ in OPERATIONS
    if (requests := _hostile_requests(method, path))
}


@pytest.fixture(scope="module")
def own_subscription(http, parties: dict[str, Party]) -> str:  # type: ignore[no-untyped-def]
    """A webhook subscription of LPSK, so that its deliveries' cursor is read."""
    body = {"url": "https://93.184.216.34/hook", "event_types": ["referral.created"]}
    headers = {"Authorization": f"Bearer {parties['LPSK'].token}"}
    response = http.post("/v1/webhook-subscriptions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("method", "path"), [pytest.param(*key, id=" ".join(key)) for key in HOSTILE]
)
def test_hostile_values_are_refused_everywhere(  # type: ignore[no-untyped-def]
    http, parties: dict[str, Party], known_referrals, own_subscription: str, method: str, path: str
) -> None:
    """Each value of a kind that once made the service fail, in each place it fits: a 4xx
    (a 422 naming the field, where there is one), never a 5xx. Requests reach the checks of
    a real referral and subscription of the caller."""
    referral = next(r["id"] for r in known_referrals if "LPSK" in r["parties"])
    url = path.replace("{referral_id}", referral).replace("{subscription_id}", own_subscription)
    url = url.replace("{delivery_id}", str(uuid.uuid4()))
    headers = {"Authorization": f"Bearer {parties['LPSK'].token}", "If-Match": '"1"'}
    for query, body, loc in HOSTILE[(method, path)]:
        response = http.request(method, url, params=query, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (query, body, response.text)
        if loc is not None:
            assert response.status_code == 422, (query, body, response.text)
            assert loc in [e["loc"] for e in response.json()["errors"]], (loc, response.text)
