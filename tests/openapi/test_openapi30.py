"""The OpenAPI 3.0.3 rendering (`rujukan openapi export --version 3.0`), for gateways such as
SPLP that import only 3.0: committed, fresh, valid 3.0, and faithful to the 3.1 document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from service.app import create_app
from service.config import Settings
from service.openapi30 import convert_schema, to_openapi30
from tests.support.cli import run_in_process

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "openapi" / "openapi-3.0.json"


@pytest.fixture(scope="module")
def spec31() -> dict[str, Any]:
    return create_app(Settings(env="dev")).openapi()


@pytest.fixture(scope="module")
def spec30(spec31: dict[str, Any]) -> dict[str, Any]:
    return to_openapi30(spec31)


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


def test_committed_30_document_equals_a_fresh_export(spec30: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert canonical(committed) == canonical(spec30), (
        "openapi/openapi-3.0.json is stale: regenerate it with "
        "`rujukan openapi export --version 3.0` (make openapi)"
    )


def test_cli_exports_30_on_request_and_31_by_default(tmp_path: Path) -> None:
    env = {"RUJUKAN_ENV": "dev", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    default = json.loads(run_in_process(["openapi", "export"], env, tmp_path).stdout)
    assert default["openapi"].startswith("3.1")
    older = json.loads(
        run_in_process(["openapi", "export", "--version", "3.0"], env, tmp_path).stdout
    )
    assert older["openapi"] == "3.0.3"
    assert canonical(older) == canonical(json.loads(COMMITTED.read_text(encoding="utf-8")))


def test_30_document_validates_as_openapi_30(spec30: dict[str, Any]) -> None:
    assert spec30["openapi"] == "3.0.3"
    validate(spec30, cls=OpenAPIV30SpecValidator)


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_no_31_construct_is_left(spec30: dict[str, Any]) -> None:
    schemas = [spec30["components"]["schemas"], *(
        m["schema"] for m in _walk(spec30["paths"]) if isinstance(m.get("schema"), dict)
    )]
    for node in _walk(schemas):
        assert node.get("type") != "null" and not isinstance(node.get("type"), list), node
        assert "const" not in node or not isinstance(node.get("const"), str | bool), node
        assert not ("$ref" in node and len(node) > 1), node
        assert not isinstance(node.get("exclusiveMinimum"), int | float) or isinstance(
            node.get("exclusiveMinimum"), bool
        ), node
    assert "summary" not in spec30["info"] and "webhooks" not in spec30


def test_nullable_and_described_refs_survive(
    spec31: dict[str, Any], spec30: dict[str, Any]
) -> None:
    """What a 3.1 schema says beside a $ref (a description, nullability) is kept in 3.0."""
    sex = spec30["components"]["schemas"]["SubjectIn"]["properties"]["sex"]
    assert sex["nullable"] is True and sex["allOf"] == [{"$ref": "#/components/schemas/Sex"}]
    count31 = sum(
        1 for n in _walk(spec31["components"]["schemas"]) if "$ref" in n and "description" in n
    )
    count30 = sum(
        1 for n in _walk(spec30["components"]["schemas"]) if "allOf" in n and "description" in n
    )
    assert count30 >= count31
    # Every operation, scheme and example of the 3.1 document is still there.
    assert spec30["paths"].keys() == spec31["paths"].keys()
    assert spec30["components"]["securitySchemes"] == spec31["components"]["securitySchemes"]
    assert spec30["info"]["description"].startswith(spec31["info"]["summary"])


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "title": "X"},
            {"type": "string", "maxLength": 3, "nullable": True, "title": "X"},
        ),
        (
            {"anyOf": [{"$ref": "#/components/schemas/Sex"}, {"type": "null"}],
             "description": "Sex, if known"},
            {"allOf": [{"$ref": "#/components/schemas/Sex"}], "nullable": True,
             "description": "Sex, if known"},
        ),
        (
            {"$ref": "#/components/schemas/ConsentIn", "description": "The consent record"},
            {"allOf": [{"$ref": "#/components/schemas/ConsentIn"}],
             "description": "The consent record"},
        ),
        ({"type": ["integer", "null"]}, {"type": "integer", "nullable": True}),
        ({"type": "boolean", "const": True}, {"type": "boolean", "enum": [True]}),
        ({"type": "string", "examples": ["a", "b"]}, {"type": "string", "example": "a"}),
        (
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        ),
        (
            {"type": "string", "contentEncoding": "base64"},
            {"type": "string", "format": "byte"},
        ),
        (
            {"type": "string", "contentMediaType": "application/octet-stream"},
            {"type": "string", "format": "binary"},
        ),
        (
            # A property that happens to be named like a keyword stays a property.
            {"type": "object", "properties": {"const": {"type": "string"},
                                             "examples": {"type": ["string", "null"]}}},
            {"type": "object", "properties": {"const": {"type": "string"},
                                             "examples": {"type": "string", "nullable": True}}},
        ),
    ],
)
def test_schema_conversion(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_schema(schema) == expected


def test_document_level_31_members_are_converted() -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1", "summary": "Short.", "description": "Long.",
                 "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"}},
        "paths": {},
        "webhooks": {"ping": {"post": {"responses": {"200": {"description": "ok"}}}}},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
    }
    converted = to_openapi30(spec)
    assert converted["info"]["description"] == "Short.\n\nLong."
    assert converted["info"]["license"] == {
        "name": "Apache 2.0", "url": "https://spdx.org/licenses/Apache-2.0.html"
    }
    assert "webhooks" not in converted and "ping" in converted["x-webhooks"]
    assert "jsonSchemaDialect" not in converted
    validate(converted, cls=OpenAPIV30SpecValidator)
    assert spec["openapi"] == "3.1.0"  # the input is left as it was


def test_a_client_generates_from_the_30_document_without_loss(tmp_path: Path) -> None:
    """A 3.0 importer sees every operation and model, and the same clean type names."""
    import shutil
    import subprocess
    import sys

    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator, "openapi-python-client is not installed (test extras)"
    result = subprocess.run(
        [generator, "generate", "--path", str(COMMITTED), "--meta", "none",
         "--output-path", str(tmp_path / "client")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Warning" not in output and "Skipping" not in output, output
    models = {p.stem for p in (tmp_path / "client" / "models").glob("*.py")}
    assert {"sex", "referral_direction", "referral_create", "problem"} <= models
    assert not [m for m in models if "type_0" in m or "item_0" in m]
