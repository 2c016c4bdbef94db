"""The OpenAPI 3.1 document rewritten as OpenAPI 3.0.3, for tools that import only 3.0.

Government API gateways (SPLP) and several API managers read only 3.0. OpenAPI 3.1 schemas
are JSON Schema 2020-12; 3.0 has its own subset of an older draft. Each 3.1 construct the
service's document uses is rewritten to its 3.0 equivalent:

- `anyOf: [X, {type: null}]` and `type: [X, "null"]` become X with `nullable: true`
  (a `$ref` X inside `allOf`, since 3.0 ignores the siblings of a `$ref`);
- a `$ref` with siblings (a description, a default) becomes `allOf: [{$ref}]` with them;
- `const` becomes a one-value `enum`; a schema's `examples` list becomes `example`;
- a numeric `exclusiveMinimum`/`exclusiveMaximum` becomes `minimum`/`maximum` with the boolean;
- `contentEncoding: base64` becomes `format: byte`, binary `contentMediaType` `format: binary`;
- `info.summary` (3.1 only) leads the description, `license.identifier` becomes its URL;
- `webhooks` (3.1 only) move to `x-webhooks`.

The walk knows where schemas are, so a property that happens to be called `const` or
`examples` is left alone.
"""

from __future__ import annotations

import copy
from typing import Any

VERSION = "3.0.3"

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "not", "additionalProperties", "contains", "propertyNames")
# JSON Schema keywords with no 3.0 meaning; annotations only, or nothing the service uses.
_DROPPED = (
    "$schema", "$id", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor", "$defs",
    "definitions", "prefixItems", "unevaluatedItems", "unevaluatedProperties",
    "dependentSchemas", "dependentRequired", "patternProperties", "propertyNames", "contains",
    "minContains", "maxContains", "if", "then", "else", "contentSchema",
)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def convert_schema(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema as an OpenAPI 3.0 schema object (a new object)."""
    if not isinstance(schema, dict):
        return schema  # `true`/`false` schemas, or `additionalProperties: false`
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: convert_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert_schema(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = convert_schema(value)
        else:
            out[key] = value

    _nullable_type(out)
    _nullable_branch(out)
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples and "example" not in out:
            out["example"] = examples[0]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[limit] = value
            out[bound] = True
    if out.pop("contentEncoding", None) == "base64":
        out.setdefault("format", "byte")
    media = out.pop("contentMediaType", None)
    if media and out.get("type") == "string" and "format" not in out:
        out["format"] = "binary"
    for key in _DROPPED:
        out.pop(key, None)
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _nullable_type(schema: dict[str, Any]) -> None:
    """`type: [X, "null"]` -> `type: X, nullable: true` (several X: an anyOf of them)."""
    types = schema.get("type")
    if not isinstance(types, list):
        return
    rest = [t for t in types if t != "null"]
    if len(rest) < len(types):
        schema["nullable"] = True
    if len(rest) == 1:
        schema["type"] = rest[0]
    else:
        del schema["type"]
        if rest:
            schema["anyOf"] = [{"type": t} for t in rest]


def _nullable_branch(schema: dict[str, Any]) -> None:
    """`anyOf: [X, {type: null}]` -> X and `nullable: true`, the schema's own members kept."""
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if not isinstance(branches, list) or not any(_is_null(b) for b in branches):
            continue
        rest = [b for b in branches if not _is_null(b)]
        schema["nullable"] = True
        if len(rest) != 1:
            schema[keyword] = rest
            continue
        del schema[keyword]
        (only,) = rest
        if "$ref" in only or "allOf" in only:
            # 3.0 ignores what stands beside a $ref, `nullable` included.
            schema["allOf"] = only.get("allOf", [only])
            schema.update({k: v for k, v in only.items() if k not in ("$ref", "allOf")})
        else:
            for key, value in only.items():
                schema.setdefault(key, value)


def _reference_only(node: dict[str, Any]) -> dict[str, Any]:
    # A Reference Object outside schemas: 3.1 lets it carry summary and description, 3.0 not.
    return {"$ref": node["$ref"]} if "$ref" in node else node


def _media(content: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for media_type, media in content.items():
        media = dict(media)
        if "schema" in media:
            media["schema"] = convert_schema(media["schema"])
        out[media_type] = media
    return out


def _parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    parameter = _reference_only(dict(parameter))
    if "schema" in parameter:
        parameter["schema"] = convert_schema(parameter["schema"])
    if "content" in parameter:
        parameter["content"] = _media(parameter["content"])
    return parameter


def _header(header: dict[str, Any]) -> dict[str, Any]:
    return _parameter(header)


def _response(response: dict[str, Any]) -> dict[str, Any]:
    response = _reference_only(dict(response))
    if "content" in response:
        response["content"] = _media(response["content"])
    if "headers" in response:
        response["headers"] = {n: _header(h) for n, h in response["headers"].items()}
    return response


def _operation(operation: dict[str, Any]) -> dict[str, Any]:
    operation = dict(operation)
    if "parameters" in operation:
        operation["parameters"] = [_parameter(p) for p in operation["parameters"]]
    body = operation.get("requestBody")
    if isinstance(body, dict):
        body = _reference_only(dict(body))
        if "content" in body:
            body["content"] = _media(body["content"])
        operation["requestBody"] = body
    if "responses" in operation:
        operation["responses"] = {s: _response(r) for s, r in operation["responses"].items()}
    if "callbacks" in operation:
        operation["callbacks"] = {
            name: {expr: _path_item(item) for expr, item in callback.items()}
            for name, callback in operation["callbacks"].items()
        }
    return operation


def _path_item(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    for method in _METHODS:
        if method in item:
            item[method] = _operation(item[method])
    if "parameters" in item:
        item["parameters"] = [_parameter(p) for p in item["parameters"]]
    return item


def to_openapi30(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 rendering of an OpenAPI 3.1 document (which is left unchanged)."""
    spec = copy.deepcopy(spec)
    out: dict[str, Any] = {"openapi": VERSION}
    info = dict(spec.get("info", {}))
    summary = info.pop("summary", None)
    if summary:
        info["description"] = "\n\n".join(p for p in (summary, info.get("description")) if p)
    license_ = info.get("license")
    if isinstance(license_, dict) and "identifier" in license_:
        license_ = dict(license_)
        identifier = license_.pop("identifier")
        license_.setdefault("url", f"https://spdx.org/licenses/{identifier}.html")
        info["license"] = license_
    out["info"] = info
    for key in ("servers", "security", "tags", "externalDocs"):
        if key in spec:
            out[key] = spec[key]
    out["paths"] = {path: _path_item(item) for path, item in spec.get("paths", {}).items()}
    components = dict(spec.get("components", {}))
    components.pop("pathItems", None)
    if "schemas" in components:
        components["schemas"] = {n: convert_schema(s) for n, s in components["schemas"].items()}
    for kind, convert in (
        ("parameters", _parameter), ("headers", _header), ("responses", _response),
    ):
        if kind in components:
            components[kind] = {n: convert(v) for n, v in components[kind].items()}
    if "requestBodies" in components:
        components["requestBodies"] = {
            n: {**b, "content": _media(b.get("content", {}))}
            for n, b in components["requestBodies"].items()
        }
    if components:
        out["components"] = components
    if spec.get("webhooks"):
        out["x-webhooks"] = {n: _path_item(i) for n, i in spec["webhooks"].items()}
    out.update({k: v for k, v in spec.items() if k.startswith("x-")})
    return out
