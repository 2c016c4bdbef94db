"""Tests for service.referrals.nik (structural NIK validation).

All NIKs below are synthetic: built from the structure rules, not taken from
any real person.
"""

from __future__ import annotations

import datetime

import pytest

from service.referrals.nik import PROVINCE_CODES, nik_problems

# 32 Jawa Barat, regency 01, district 01, born 12 Mar (19)85, serial 0001.
VALID_MALE = "3201011203850001"
# Same area, born 15 Jun (19)92 -> day 15 + 40 = 55, serial 0002.
VALID_FEMALE = "3201015506920002"


# str.isdigit() is True for these, so they must be rejected explicitly.
_ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
_FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))


def _has_problem(problems: list[str], fragment: str) -> bool:
    return any(fragment in p for p in problems)


# --------------------------------------------------------------------------- valid


@pytest.mark.parametrize(
    "nik",
    [
        VALID_MALE,
        VALID_FEMALE,
        "1101010101000001",  # Aceh, 1 Jan 00
        "9601013112999999",  # Papua Barat Daya, 31 Dec 99
        "9301014101050001",  # Papua Selatan, female, 1 Jan 05
        "9401012902040001",  # Papua Tengah, 29 Feb 04 (leap in 1904 and 2004)
        "9501012902000001",  # Papua Pegunungan, 29 Feb 00 (2000 is a leap year)
        "9201016902000001",  # female 29 Feb 00 (69 - 40 = 29)
        "6501017112880001",  # Kalimantan Utara, female 31 Dec 88
    ],
)
def test_structurally_valid(nik: str) -> None:
    assert nik_problems(nik) == []


def test_valid_male_with_matching_details() -> None:
    assert nik_problems(VALID_MALE, datetime.date(1985, 3, 12), "male") == []


def test_valid_female_with_matching_details() -> None:
    assert nik_problems(VALID_FEMALE, datetime.date(1992, 6, 15), "female") == []


def test_birth_date_only_compares_two_digit_year() -> None:
    # The NIK only carries YY, so 2085 cannot be told apart from 1985.
    assert nik_problems(VALID_MALE, datetime.date(2085, 3, 12)) == []


def test_datetime_is_accepted_as_birth_date() -> None:
    assert nik_problems(VALID_MALE, datetime.datetime(1985, 3, 12, 8, 30)) == []


def test_province_codes() -> None:
    assert len(PROVINCE_CODES) == 38
    assert {"11", "21", "31", "36", "65", "76", "82", "91", "96"} <= PROVINCE_CODES
    # The 2022 Papua provinces.
    assert {"93", "94", "95", "96"} <= PROVINCE_CODES
    assert all(len(c) == 2 and c.isascii() and c.isdigit() for c in PROVINCE_CODES)
    assert isinstance(PROVINCE_CODES, frozenset)


# ------------------------------------------------------------------------- invalid

# (nik, fragment expected in one of the problems)
INVALID_CASES = [
    # length
    ("", "exactly sixteen digits"),
    ("320101120385000", "exactly sixteen digits"),
    ("32010112038500011", "exactly sixteen digits"),
    ("3201 0112 0385 0001", "exactly sixteen digits"),
    # non-digits
    ("320101120385000A", "only the ASCII digits"),
    ("32010112038500\u0661\u0661", "only the ASCII digits"),  # Arabic-Indic one
    (VALID_MALE.translate(_FULLWIDTH), "only the ASCII digits"),
    (" 320101120385001", "only the ASCII digits"),
    ("3201011203850-01", "only the ASCII digits"),
    (VALID_MALE.translate(_ARABIC_INDIC), "only the ASCII digits"),
    # province
    ("0001011203850001", "province code"),
    ("1001011203850001", "province code"),
    ("2001011203850001", "province code"),
    ("3701011203850001", "province code"),
    ("9001011203850001", "province code"),
    ("9701011203850001", "province code"),
    ("9901011203850001", "province code"),
    # regency / district
    ("3200011203850001", "regency/city code"),
    ("3201001203850001", "district code"),
    # day / month fields
    ("3201010003850001", "invalid day"),
    ("3201013203850001", "invalid day"),
    ("3201014003850001", "invalid day"),
    ("3201017203850001", "invalid day"),
    ("3201019903850001", "invalid day"),
    ("3201011200850001", "invalid month"),
    ("3201011213850001", "invalid month"),
    # impossible calendar dates
    ("3201013102850001", "not a real calendar date"),  # 31 Feb
    ("3201017102850001", "not a real calendar date"),  # female 31 Feb
    ("3201013002000001", "not a real calendar date"),  # 30 Feb
    ("3201012902010001", "not a real calendar date"),  # 29 Feb 01: never a leap year
    ("3201016902990001", "not a real calendar date"),  # female 29 Feb 99
    ("3201013104850001", "not a real calendar date"),  # 31 Apr
    ("3201013111850001", "not a real calendar date"),  # 31 Nov
    # serial
    ("3201011203850000", "serial number"),
]


@pytest.mark.parametrize(("nik", "fragment"), INVALID_CASES)
def test_invalid(nik: str, fragment: str) -> None:
    problems = nik_problems(nik)
    assert problems, nik
    assert _has_problem(problems, fragment), problems


@pytest.mark.parametrize(
    ("nik", "ok"),
    [
        ("3201012902000001", True),  # 29 Feb 2000
        ("3201012902040001", True),  # 29 Feb 2004
        ("3201012902960001", True),  # 29 Feb 1996
        ("3201012902010001", False),  # 2001 / 1901
        ("3201012902970001", False),  # 1997 / 2097
        ("3201012902100001", False),  # 2010 / 1910
    ],
)
def test_29_february_needs_a_leap_year_in_some_century(nik: str, ok: bool) -> None:
    assert (nik_problems(nik) == []) is ok


def test_every_problem_is_reported() -> None:
    problems = nik_problems("0000000000000000")
    for fragment in (
        "province code",
        "regency/city code",
        "district code",
        "invalid day",
        "invalid month",
        "serial number",
    ):
        assert _has_problem(problems, fragment), (fragment, problems)


def test_length_and_charset_problems_stop_further_checks() -> None:
    assert nik_problems("00") == ["NIK must be exactly sixteen digits"]


def test_non_string_is_a_problem_not_a_crash() -> None:
    assert nik_problems(3201011203850001) == [  # type: ignore[arg-type]
        "NIK must be a string of sixteen digits"
    ]


# --------------------------------------------------------------------- birth_date


@pytest.mark.parametrize(
    ("nik", "birth_date"),
    [
        (VALID_MALE, datetime.date(1985, 3, 13)),  # day
        (VALID_MALE, datetime.date(1985, 4, 12)),  # month
        (VALID_MALE, datetime.date(1986, 3, 12)),  # year
        (VALID_FEMALE, datetime.date(1992, 6, 16)),
        (VALID_FEMALE, datetime.date(1992, 7, 15)),
        (VALID_FEMALE, datetime.date(1993, 6, 15)),
    ],
)
def test_birth_date_mismatch(nik: str, birth_date: datetime.date) -> None:
    problems = nik_problems(nik, birth_date=birth_date)
    assert problems == ["NIK date of birth does not match birth_date"]


def test_birth_date_not_compared_when_nik_date_is_impossible() -> None:
    problems = nik_problems("3201013102850001", birth_date=datetime.date(1985, 2, 28))
    assert problems == ["NIK date of birth is not a real calendar date"]


def test_birth_date_must_be_a_date() -> None:
    with pytest.raises(TypeError):
        nik_problems(VALID_MALE, birth_date="1985-03-12")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- sex


@pytest.mark.parametrize(
    ("nik", "sex", "expected"),
    [
        (VALID_MALE, "female", "NIK encodes a male birth date but sex is female"),
        (VALID_FEMALE, "male", "NIK encodes a female birth date but sex is male"),
        ("3201013112850001", "female", "NIK encodes a male birth date but sex is female"),
        ("3201014101850001", "male", "NIK encodes a female birth date but sex is male"),
    ],
)
def test_sex_mismatch(nik: str, sex: str, expected: str) -> None:
    assert nik_problems(nik, sex=sex) == [expected]


@pytest.mark.parametrize(("nik", "sex"), [(VALID_MALE, "male"), (VALID_FEMALE, "female")])
def test_sex_match(nik: str, sex: str) -> None:
    assert nik_problems(nik, sex=sex) == []


@pytest.mark.parametrize("sex", ["M", "F", "Male", "perempuan", ""])
def test_unknown_sex_value_is_a_caller_error(sex: str) -> None:
    with pytest.raises(ValueError):
        nik_problems(VALID_MALE, sex=sex)


def test_birth_date_and_sex_mismatch_together() -> None:
    problems = nik_problems(VALID_MALE, datetime.date(1990, 1, 1), "female")
    assert problems == [
        "NIK date of birth does not match birth_date",
        "NIK encodes a male birth date but sex is female",
    ]


# ------------------------------------------------------------------- no leakage

_LEAK_CASES = [nik for nik, _ in INVALID_CASES] + [
    "0000000000000000",
    "9999999999999999",
    "1234567890123456",
]


@pytest.mark.parametrize("nik", _LEAK_CASES)
@pytest.mark.parametrize(
    ("birth_date", "sex"),
    [(None, None), (datetime.date(1970, 1, 1), "female"), (datetime.date(2001, 12, 31), "male")],
)
def test_messages_never_contain_nik_digits(
    nik: str, birth_date: datetime.date | None, sex: str | None
) -> None:
    for message in nik_problems(nik, birth_date, sex):
        assert not any(ch.isdigit() for ch in message), message
        if nik:
            assert nik not in message
        # No run of the input's characters longer than one ("NIK" itself aside).
        for i in range(len(nik) - 1):
            chunk = nik[i : i + 2]
            if chunk.strip():
                assert chunk not in message, (chunk, message)


@pytest.mark.parametrize("nik", [VALID_MALE, VALID_FEMALE])
def test_mismatch_messages_never_contain_nik_digits(nik: str) -> None:
    for message in nik_problems(nik, datetime.date(1999, 9, 9), "male") + nik_problems(
        nik, datetime.date(1999, 9, 9), "female"
    ):
        assert not any(ch.isdigit() for ch in message), message
