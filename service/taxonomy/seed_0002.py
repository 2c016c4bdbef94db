"""Reference data seeded by the second database migration (UU PDP duties).

FROZEN, like seed_0001: imported by migration 0002. Add, rename or retire codes only
through a later migration with its own seed module. Literals only, no logic.

Consent purposes follow UU 27/2022 (UU PDP) Pasal 20-22: consent is given for one or
more specific purposes, and processing is limited to them. `consent_withdrawn` is the
close outcome written by `POST /v1/referrals/{id}/consent-withdrawal` (Pasal 40).
"""

CONSENT_PURPOSES = (
    {
        "code": "REFERRAL",
        "name": "Rujukan antarlembaga",
        "description": (
            "Sharing the person's data with the receiving agency to refer them; every "
            "referral needs it."
        ),
    },
    {
        "code": "ASSESSMENT",
        "name": "Asesmen kebutuhan",
        "description": "Assessing the person's needs (ATENSI assessment).",
    },
    {
        "code": "SERVICE_DELIVERY",
        "name": "Pemberian layanan",
        "description": "Delivering rehabilitation, empowerment or protection services.",
    },
    {
        "code": "CASE_COORDINATION",
        "name": "Koordinasi penanganan kasus",
        "description": ("Coordinating the case between agencies, including onward referral."),
    },
    {
        "code": "PROTECTION",
        "name": "Perlindungan saksi dan korban",
        "description": "Witness and victim protection under UU 31/2014 (LPSK).",
    },
)

OUTCOMES = ({"code": "consent_withdrawn", "name": "Persetujuan ditarik oleh subjek data"},)

# What a consent given before migration 0002 (without purposes) is read as: the purposes
# an unchanged client's consent covers, given by the person themself.
LEGACY_CONSENT_PURPOSES = ("REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY")
LEGACY_CONSENT_GIVEN_BY = "subject"
