"""Structural validation of the Indonesian NIK (Nomor Induk Kependudukan).

A NIK is 16 ASCII digits::

    PP KK CC DDMMYY SSSS
    |  |  |  |      +-- serial number, never all zeros
    |  |  |  +--------- date of birth; women have 40 added to the day
    |  |  +------------ district (kecamatan) code, never zero
    |  +--------------- regency/city (kabupaten/kota) code, never zero
    +------------------ province code (Kemendagri)

Only the structure is checked here: a structurally valid NIK is not proof that
the number was ever issued by Dukcapil.

The people whose NIKs pass through this service must not be identifiable from
logs or API error bodies, so no message returned by :func:`nik_problems` ever
contains the NIK, any part of it, or any digit at all.
"""

from __future__ import annotations

import datetime

from service.i18n import N_

__all__ = ["PROVINCE_CODES", "nik_problems"]

# Kemendagri province codes, including the four Papua provinces created in 2022.
# Residents registered before a province was split keep the NIK issued under
# the old code, so a code is never removed from this table once added.
_PROVINCES: dict[str, str] = {
    "11": "Aceh",
    "12": "Sumatera Utara",
    "13": "Sumatera Barat",
    "14": "Riau",
    "15": "Jambi",
    "16": "Sumatera Selatan",
    "17": "Bengkulu",
    "18": "Lampung",
    "19": "Kepulauan Bangka Belitung",
    "21": "Kepulauan Riau",
    "31": "DKI Jakarta",
    "32": "Jawa Barat",
    "33": "Jawa Tengah",
    "34": "DI Yogyakarta",
    "35": "Jawa Timur",
    "36": "Banten",
    "51": "Bali",
    "52": "Nusa Tenggara Barat",
    "53": "Nusa Tenggara Timur",
    "61": "Kalimantan Barat",
    "62": "Kalimantan Tengah",
    "63": "Kalimantan Selatan",
    "64": "Kalimantan Timur",
    "65": "Kalimantan Utara",
    "71": "Sulawesi Utara",
    "72": "Sulawesi Tengah",
    "73": "Sulawesi Selatan",
    "74": "Sulawesi Tenggara",
    "75": "Gorontalo",
    "76": "Sulawesi Barat",
    "81": "Maluku",
    "82": "Maluku Utara",
    "91": "Papua",
    "92": "Papua Barat",
    "93": "Papua Selatan",
    "94": "Papua Tengah",
    "95": "Papua Pegunungan",
    "96": "Papua Barat Daya",
}

PROVINCE_CODES: frozenset[str] = frozenset(_PROVINCES)

_NIK_LENGTH = 16
_ASCII_DIGITS = frozenset("0123456789")
_FEMALE_DAY_OFFSET = 40
_SEXES = ("male", "female")


def _real_date_in_some_century(day: int, month: int, two_digit_year: int) -> bool:
    """True if day/month exist in 19YY or 20YY (e.g. 29 Feb with YY=00 exists in 2000)."""
    for century in (1900, 2000):
        try:
            datetime.date(century + two_digit_year, month, day)
        except ValueError:
            continue
        return True
    return False


def nik_problems(
    nik: str,
    birth_date: datetime.date | None = None,
    sex: str | None = None,
) -> list[str]:
    """Return human-readable problems with a NIK; an empty list means it is structurally valid.

    ``birth_date``, when given, must agree with the day, month and two-digit year
    encoded in the NIK. ``sex``, when given, must be ``"male"`` or ``"female"``
    and must agree with the encoded day (women have 40 added to it).

    The messages never contain the NIK, any part of it, or any digit.

    Raises ``TypeError`` if ``birth_date`` is not a date and ``ValueError`` if
    ``sex`` is not one of the two accepted values: those are caller bugs, not
    problems with the NIK.
    """
    if birth_date is not None and not isinstance(birth_date, datetime.date):
        raise TypeError("birth_date must be a datetime.date or None")
    if sex is not None and sex not in _SEXES:
        raise ValueError("sex must be 'male', 'female' or None")

    if not isinstance(nik, str):
        return [N_("NIK must be a string of sixteen digits")]

    problems: list[str] = []
    if len(nik) != _NIK_LENGTH:
        problems.append(N_("NIK must be exactly sixteen digits"))
    if not set(nik) <= _ASCII_DIGITS:
        # str.isdigit() would accept e.g. Arabic-Indic or full-width digits.
        problems.append(N_("NIK must contain only the ASCII digits zero to nine"))
    if problems:
        return problems

    if nik[0:2] not in PROVINCE_CODES:
        problems.append(N_("NIK province code is not a known province"))
    if nik[2:4] == "00":
        problems.append(N_("NIK regency/city code must not be zero"))
    if nik[4:6] == "00":
        problems.append(N_("NIK district code must not be zero"))

    encoded_day = int(nik[6:8])
    month = int(nik[8:10])
    two_digit_year = int(nik[10:12])

    is_female = encoded_day > _FEMALE_DAY_OFFSET
    day = encoded_day - _FEMALE_DAY_OFFSET if is_female else encoded_day
    day_field_ok = 1 <= day <= 31
    month_field_ok = 1 <= month <= 12

    date_ok = False
    if not day_field_ok:
        problems.append(N_("NIK date of birth has an invalid day"))
    if not month_field_ok:
        problems.append(N_("NIK date of birth has an invalid month"))
    if day_field_ok and month_field_ok:
        date_ok = _real_date_in_some_century(day, month, two_digit_year)
        if not date_ok:
            problems.append(N_("NIK date of birth is not a real calendar date"))

    if nik[12:16] == "0000":
        problems.append(N_("NIK serial number must not be all zeros"))

    if (
        birth_date is not None
        and date_ok
        and (day, month, two_digit_year)
        != (birth_date.day, birth_date.month, birth_date.year % 100)
    ):
        problems.append(N_("NIK date of birth does not match birth_date"))

    if sex is not None and day_field_ok:
        if is_female and sex == "male":
            problems.append(N_("NIK encodes a female birth date but sex is male"))
        elif not is_female and sex == "female":
            problems.append(N_("NIK encodes a male birth date but sex is female"))

    return problems
