"""References are human-readable and unique, and count nothing (CONTRACT §4): an agency's
first reference does not tell how many referrals other agencies made before it."""

from __future__ import annotations

import re

from tests.support import Api, ok, referral_body, ts

# RJK-<year>-<8 characters of Crockford's base32: digits and letters but I, L, O, U>.
REFERENCE = re.compile(r"^RJK-(\d{4})-([0-9A-HJKMNP-TV-Z]{8})$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def code_value(reference: str) -> int:
    match = REFERENCE.match(reference)
    assert match, reference
    value = 0
    for char in match.group(2):
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_an_agencys_first_reference_does_not_count_other_agencies_referrals(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    others = [lpsk.create_ok("KEMENSOS")["reference"] for _ in range(3)]
    others.append(kemensos.create_ok("LPSK")["reference"])
    created = kemenham.create_ok("LPSK")
    first = created["reference"]
    match = REFERENCE.match(first)
    assert match, first  # not RJK-2026-000005, the fifth number of one shared sequence
    assert int(match.group(1)) == ts(created["created_at"]).year
    assert first not in others
    # Nor does it follow from the references before it: they are not a sequence.
    assert code_value(first) not in {code_value(r) + 1 for r in others}


def test_references_of_one_agency_in_a_row_are_no_sequence(lpsk: Api) -> None:
    references = [ok(lpsk.create(referral_body("KEMENSOS")), 201)["reference"] for _ in range(20)]
    values = [code_value(r) for r in references]
    assert len(set(values)) == len(values)
    # Twenty random codes come out in increasing order once in 20! (about 2.4e18) runs.
    assert values != sorted(values)
    steps = {b - a for a, b in zip(values, values[1:], strict=False)}
    assert len(steps) > 1  # no constant step either


def test_a_reference_is_read_back_as_created(lpsk: Api, kemensos: Api) -> None:
    created = lpsk.create_ok("KEMENSOS")
    assert ok(kemensos.get(created["id"]))["reference"] == created["reference"]
    assert [i["reference"] for i in ok(kemensos.list())["items"]] == [created["reference"]]
