"""Named enumerations in the OpenAPI document, so that generated clients get readable types.

Pydantic writes a `Literal` inline wherever it is used, and client generators then name each
copy after where they found it (`SubjectInSexType0`, `ListReferralsDirectionType0`). Here each
list of values gets one schema under `components/schemas`, named for what it is, and every
inline copy becomes a `$ref` to it (a nullable one `anyOf: [$ref, null]`). The values come
from the code's own `Literal`s: a list is never written a second time here.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from service.events.schemas import DeliveryStatus, EventType
from service.referrals.schemas import (
    Approach,
    ConsentIn,
    GuardianRelationship,
    NikAbsentReason,
    Outcome,
    Status,
    SubjectIn,
    Urgency,
)
from service.stats.schemas import Stats, StepTime


def _literal_of(model: type[BaseModel], field: str) -> Any:
    """The `Literal` in a model field's annotation (`Literal[...] | None` included)."""
    annotation = model.model_fields[field].annotation
    if get_origin(annotation) in (Union, UnionType):
        literals = [a for a in get_args(annotation) if get_origin(a) is Literal]
        (annotation,) = literals
    if get_origin(annotation) is not Literal:
        raise TypeError(f"{model.__name__}.{field} is not a Literal")
    return annotation


def _values(literal: Any) -> tuple[str, ...]:
    return tuple(get_args(literal))


# Name -> what it means, and the Literal that holds its values.
NAMED: dict[str, tuple[str, Any]] = {
    "ReferralStatus": ("Where a referral is in its lifecycle", Status),
    "ReferralDirection": (
        "`incoming`: referrals sent to the caller's agency; `outgoing`: those it sent",
        _literal_of(Stats, "direction"),
    ),
    "Urgency": ("How soon the receiving agency must act", Urgency),
    "Approach": ("ATENSI care setting: residential, family-based or community-based", Approach),
    "Outcome": ("How a referral was closed", Outcome),
    "Sex": ("Sex of the person, as recorded on their identity card", _literal_of(SubjectIn, "sex")),
    "NikAbsentReason": ("Why a person has no NIK", NikAbsentReason),
    "ConsentMethod": ("How consent was recorded", _literal_of(ConsentIn, "method")),
    "ConsentGivenBy": (
        "Who consented: the person, or their parent or guardian",
        _literal_of(ConsentIn, "given_by"),
    ),
    "GuardianRelationship": ("How the guardian is related to the person", GuardianRelationship),
    "EventType": ("What happened to a referral", EventType),
    "DeliveryStatus": ("Where a webhook delivery stands", DeliveryStatus),
    "LifecycleStep": (
        "A step of the lifecycle, between two statuses",
        _literal_of(StepTime, "step"),
    ),
}

_BY_VALUES = {frozenset(_values(literal)): name for name, (_, literal) in NAMED.items()}
if len(_BY_VALUES) != len(NAMED):  # pragma: no cover - caught on import by any test
    raise RuntimeError("two named enumerations have the same values")

# Members of an inline enum that the named schema replaces; the rest (a description, a
# default, examples) stay beside the `$ref`, where they say what this use of it means.
_REPLACED = {"enum", "type", "title"}


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def name_enums(spec: dict[str, Any]) -> dict[str, Any]:
    """Move each known inline enum to a named component schema and refer to it."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    used: set[str] = set()
    for schema in list(_schemas({k: v for k, v in spec.items() if k != "components"})) + list(
        _schemas(components)
    ):
        values = schema.get("enum")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            continue
        name = _BY_VALUES.get(frozenset(values))
        if name is None or components.get(name) is schema:
            continue
        rest = {k: v for k, v in schema.items() if k not in _REPLACED}
        schema.clear()
        schema.update({"$ref": f"#/components/schemas/{name}", **rest})
        used.add(name)
    for name in sorted(used):
        description, literal = NAMED[name]
        components[name] = {
            "type": "string",
            "enum": list(_values(literal)),
            "title": name,
            "description": description,
        }
    return spec
