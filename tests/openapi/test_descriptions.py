"""Every property and parameter of the served OpenAPI document says what it is, and every field
that takes a reference code names its list and links where the list is served.

A code field carries `x-taxonomy: <list>` (a list of names when it takes either list's codes)
or `x-agency-code: true`; its description names the list and links the operation that serves
it, in the form Swagger UI opens (`#/<tag>/<operationId>`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from tests.support import Api

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
TAXONOMY_LINK = "](#/reference%20data/get_taxonomy)"
AGENCIES_LINK = "](#/reference%20data/list_agencies)"
LINK = re.compile(r"\]\((#[^)]*)\)")

# The fields the contract (CONTRACT §4, §5) says take codes, and the list each takes them from.
CONTRACT_CODE_FIELDS: dict[tuple[str, str], str | list[str]] = {
    ("ReferralCreate", "groups"): "groups",
    ("ReferralCreate", "kemenham_groups"): "kemenham_groups",
    ("ReferralCreate", "case_types"): "case_types",
    ("ConsentIn", "purposes"): "consent_purposes",
    ("AssessIn", "needs"): "service_types",
    ("AssessIn", "service_unit"): "service_units",
    ("ServiceIn", "service_type"): "service_types",
    ("ServiceIn", "service_unit"): "service_units",
    ("CloseIn", "outcome"): "outcomes",
    ("CloseIn", "reason"): "decline_reasons",
    ("ReferralRead", "groups"): "groups",
    ("ReferralRead", "kemenham_groups"): "kemenham_groups",
    ("ReferralRead", "case_types"): "case_types",
    ("AssessmentOut", "needs"): "service_types",
    ("ServiceOut", "service_type"): "service_types",
    ("ClosureOut", "outcome"): "outcomes",
    ("ClosureOut", "reason"): "decline_reasons",
}
CONTRACT_AGENCY_FIELDS = {
    ("ReferralCreate", "to_agency"),
    ("CloseIn", "onward_agency"),
    ("ReferralRead", "from_agency"),
    ("ReferralRead", "to_agency"),
    ("ClosureOut", "onward_agency"),
    ("EventRead", "from_agency"),
    ("EventRead", "to_agency"),
}
CONTRACT_CODE_PARAMETERS: dict[tuple[str, str], str | list[str] | bool] = {
    ("list_referrals", "group"): ["groups", "kemenham_groups"],
    ("list_referrals", "to_agency"): True,
    ("list_referrals", "from_agency"): True,
}


@pytest.fixture(scope="module")
def spec(http: Any) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def taxonomy(lpsk: Api) -> dict[str, list[dict[str, Any]]]:
    response = lpsk.http.get("/v1/taxonomy", headers=lpsk.headers())
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def properties(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every component schema, nested inline objects included."""

    def walk(name: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, prop in schema.get("properties", {}).items():
            yield f"{name}.{key}", prop
            yield from walk(f"{name}.{key}", prop)
        for branch in (*schema.get("anyOf", []), *schema.get("oneOf", []), schema.get("items")):
            if isinstance(branch, dict):
                yield from walk(name, branch)

    for name, schema in spec["components"]["schemas"].items():
        yield from walk(name, schema)


def parameters(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for method, path, op in operations(spec):
        for parameter in op.get("parameters", []):
            yield f"{method} {path} {parameter['in']} {parameter['name']}", parameter


def marked(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, description, extensions) of every property and parameter marked as a code."""
    for where, prop in properties(spec):
        yield where, prop.get("description", ""), prop
    for where, parameter in parameters(spec):
        yield where, parameter.get("description", ""), parameter.get("schema", {})


def named_lists(extension: str | list[str]) -> list[str]:
    return [extension] if isinstance(extension, str) else extension


def test_every_schema_property_has_a_description(spec: dict[str, Any]) -> None:
    undescribed = [
        where for where, prop in properties(spec) if not prop.get("description", "").strip()
    ]
    assert undescribed == []


def test_every_parameter_has_a_description(spec: dict[str, Any]) -> None:
    undescribed = [
        where for where, parameter in parameters(spec)
        if not parameter.get("description", "").strip()
    ]
    assert undescribed == []


def test_code_fields_name_their_taxonomy_list_and_link_it(
    spec: dict[str, Any], taxonomy: dict[str, list[dict[str, Any]]]
) -> None:
    found = 0
    for where, description, extensions in marked(spec):
        if "x-taxonomy" not in extensions:
            continue
        found += 1
        for name in named_lists(extensions["x-taxonomy"]):
            assert name in taxonomy, f"{where}: no list `{name}` in GET /v1/taxonomy"
            assert f"`{name}`" in description, f"{where}: the description does not name {name}"
        assert TAXONOMY_LINK in description, f"{where}: no link to GET /v1/taxonomy"
    assert found >= len(CONTRACT_CODE_FIELDS)


def test_the_lists_named_are_exactly_the_lists_the_taxonomy_serves(
    spec: dict[str, Any], taxonomy: dict[str, list[dict[str, Any]]]
) -> None:
    named = {
        name
        for _, _, extensions in marked(spec)
        if "x-taxonomy" in extensions
        for name in named_lists(extensions["x-taxonomy"])
    }
    assert named == set(taxonomy)


def test_agency_fields_link_the_agency_list(spec: dict[str, Any]) -> None:
    agency_fields = [
        (where, description)
        for where, description, extensions in marked(spec)
        if extensions.get("x-agency-code") is True
    ]
    assert len(agency_fields) >= len(CONTRACT_AGENCY_FIELDS)
    assert [where for where, description in agency_fields if AGENCIES_LINK not in description] == []


def test_the_contract_code_fields_are_marked_with_their_list(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for (schema, field), expected in CONTRACT_CODE_FIELDS.items():
        assert schemas[schema]["properties"][field].get("x-taxonomy") == expected, (schema, field)
    for schema, field in CONTRACT_AGENCY_FIELDS:
        assert schemas[schema]["properties"][field].get("x-agency-code") is True, (schema, field)
    by_operation = {op["operationId"]: op for _, _, op in operations(spec)}
    for (operation_id, name), expected in CONTRACT_CODE_PARAMETERS.items():
        (parameter,) = [p for p in by_operation[operation_id]["parameters"] if p["name"] == name]
        extension = "x-agency-code" if expected is True else "x-taxonomy"
        assert parameter["schema"].get(extension) == expected, (operation_id, name)


def test_fixed_choices_of_a_code_field_are_codes_of_its_list(
    spec: dict[str, Any], taxonomy: dict[str, list[dict[str, Any]]]
) -> None:
    checked = 0
    components = spec["components"]["schemas"]
    for where, _, extensions in marked(spec):
        # Inline, or a named enum the property refers to.
        named = components.get(extensions.get("$ref", "").rpartition("/")[2], {})
        choices = extensions.get("enum", named.get("enum"))
        if "x-taxonomy" not in extensions or choices is None:
            continue
        checked += 1
        codes = {
            term["code"]
            for name in named_lists(extensions["x-taxonomy"])
            for term in taxonomy[name]
        }
        assert set(choices) <= codes, where
    # At least the close outcomes a client may send (CloseIn.outcome).
    assert checked >= 1


def test_links_in_descriptions_open_an_operation(spec: dict[str, Any]) -> None:
    """`#/<tag>/<operationId>`: the operation exists and carries that tag."""
    targets = {
        (tag, op["operationId"]) for _, _, op in operations(spec) for tag in op.get("tags", [])
    }
    links = [
        (where, link)
        for where, description, _ in marked(spec)
        for link in LINK.findall(description)
    ]
    assert links
    broken = []
    for where, link in links:
        _, tag, operation_id = link.split("/", 2)
        if (unquote(tag), operation_id) not in targets:
            broken.append((where, link))
    assert broken == []
