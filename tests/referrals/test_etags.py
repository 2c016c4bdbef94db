"""If-Match read as RFC 9110 defines it (service.referrals.etags)."""

from __future__ import annotations

import re

import pytest

from service import errors
from service.app import openapi_spec
from service.referrals.etags import IF_MATCH_PATTERN, Precondition, etag, expected_versions


def test_no_header_or_an_empty_one_is_no_precondition() -> None:
    assert expected_versions(None) is None
    assert expected_versions("") is None
    assert expected_versions("  ") is None


def test_strong_tags_name_their_versions() -> None:
    assert expected_versions('"3"') == Precondition(frozenset({3}))
    assert expected_versions(' "3" , "5",') == Precondition(frozenset({3, 5}))
    assert expected_versions(etag(7)).admits(7)  # type: ignore[union-attr]


def test_star_admits_any_version() -> None:
    star = expected_versions("*")
    assert star is not None and star.any_version
    assert all(star.admits(v) for v in (1, 2, 99))


def test_a_weak_tag_never_matches_and_the_refusal_says_why() -> None:
    weak = expected_versions('W/"1"')
    assert weak is not None and not weak.admits(1)
    refusal = str(weak.refusal(1))
    assert "strong comparison" in refusal and 'W/"1"' in refusal and '"1"' in refusal


def test_a_stale_tag_is_refused_without_contradicting_itself() -> None:
    stale = expected_versions('"1"')
    assert stale is not None and not stale.admits(2)
    refusal = str(stale.refusal(2))
    assert '"1"' in refusal and "version 2" in refusal


@pytest.mark.parametrize("value", ["1", "W/1", '"1', "1, 2", '*, "1"', "abc"])
def test_a_value_that_is_not_an_entity_tag_is_a_400(value: str) -> None:
    with pytest.raises(errors.InvalidIfMatch) as raised:
        expected_versions(value)
    assert raised.value.status == 400
    assert 'If-Match: "' in str(raised.value.detail)


def test_an_unquoted_version_is_shown_in_its_quoted_form() -> None:
    with pytest.raises(errors.InvalidIfMatch) as raised:
        expected_versions("12")
    assert 'If-Match: "12"' in str(raised.value.detail)


@pytest.mark.parametrize("value", ["*", '"1"', ' "1" ,"2"', 'W/"1"', '"3", W/"4"'])
def test_the_documented_pattern_admits_what_the_service_takes(value: str) -> None:
    assert re.fullmatch(IF_MATCH_PATTERN, value)
    expected_versions(value)


@pytest.mark.parametrize("value", ["1", "W/1", '"1', '*, "1"', "abc"])
def test_the_documented_pattern_refuses_what_the_service_refuses(value: str) -> None:
    assert not re.fullmatch(IF_MATCH_PATTERN, value)
    with pytest.raises(errors.InvalidIfMatch):
        expected_versions(value)


def test_every_if_match_of_the_openapi_document_carries_the_pattern() -> None:
    found = 0
    for item in openapi_spec()["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "If-Match":
                    schema = parameter["schema"]
                    assert schema["type"] == "string" and "anyOf" not in schema
                    assert schema["pattern"] == IF_MATCH_PATTERN
                    found += 1
    assert found >= 6
