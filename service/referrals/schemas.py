"""Request and response shapes of the referral API (never bound straight onto table rows)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service.i18n import Message, join, msg
from service.inputs import Input, Timestamp, field_error
from service.referrals.nik import nik_problems
from service.taxonomy.fields import agency_field, code_field
from service.times import IN_THE_FUTURE, Instant, future_problem, future_values

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
AgencyCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Z0-9_]+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]

Urgency = Literal["emergency", "urgent", "routine"]
Approach = Literal["residential", "family", "community"]
Status = Literal["referred", "assessed", "served", "closed"]
Outcome = Literal[
    "completed", "declined", "withdrawn", "unreachable", "deceased", "referred_onward"
]
GuardianRelationship = Literal["parent", "legal_guardian", "social_worker", "other"]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{5,19}$")]

# What a consent covers when a client sends no `purposes` (clients written before purposes
# existed keep working); codes of the `consent_purpose` taxonomy.
DEFAULT_CONSENT_PURPOSES = ("REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY")
REQUIRED_CONSENT_PURPOSE = "REFERRAL"
ADULT_AGE = 18

NikAbsentReason = Literal[
    "not_registered", "unknown", "foreign_national", "refused", "undocumented_child"
]


class _Input(Input):
    """A request body of the referral API."""


def _not_future(value: dt.datetime) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if future_problem(value, now) is not None:
        # The template and its values apart, as pydantic keeps them, so it can be translated.
        raise PydanticCustomError("future_time", IN_THE_FUTURE, future_values(now))
    return value


# An event time a request reports: it has happened, so it is not in the future (within
# MAX_CLOCK_SKEW); the actions check it against the referral's own history.
EventTime = Annotated[Timestamp, AfterValidator(_not_future)]


class SubjectIn(_Input):
    """The referred person."""

    full_name: ShortText = Field(description="The person's full name (1 to 200 characters)")
    nik: str | None = Field(
        default=None,
        description=(
            "The person's 16-digit NIK (Nomor Induk Kependudukan). Checked for structure only "
            "(province, regency and district codes, a real birth date in it, a serial that is "
            "not all zeros) and against `birth_date` and `sex` when they are given (women's "
            "day of birth plus 40). Stored only encrypted and as a keyed hash for searching. "
            "Required unless `nik_absent_reason` is given"
        ),
    )
    nik_absent_reason: NikAbsentReason | None = Field(
        default=None,
        description="Why the person has no NIK to give; only when `nik` is absent, then required",
    )
    birth_date: dt.date | None = Field(
        default=None,
        description=(
            "Date of birth (YYYY-MM-DD), not in the future. Decides whether consent must come "
            "from a parent or guardian (under 18 on `consent.obtained_at`)"
        ),
    )
    sex: Literal["male", "female"] | None = Field(
        default=None, description="Sex as registered; checked against the NIK when both are given"
    )
    address: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] | None = (
        Field(default=None, description="Postal address, free text up to 500 characters")
    )
    region_code: (
        Annotated[str, StringConstraints(pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")] | None
    ) = Field(
        default=None,
        description=(
            "Kemendagri region code where the person lives: province, regency or city, "
            "district, village, dot-separated, as deep as known (e.g. `31.71.01.1001`)"
        ),
    )
    phone: Phone | None = Field(
        default=None,
        description="Telephone number: digits, spaces and hyphens, optionally a leading `+`",
    )

    @model_validator(mode="after")
    def _check_identity(self) -> SubjectIn:
        if self.nik is None and self.nik_absent_reason is None:
            raise field_error(
                ("nik",), msg("nik is required unless nik_absent_reason is given"), None
            )
        if self.nik is not None and self.nik_absent_reason is not None:
            raise field_error(
                ("nik_absent_reason",),
                msg("give either nik or nik_absent_reason, not both"),
                self.nik_absent_reason,
            )
        if self.birth_date is not None and self.birth_date > dt.date.today():
            raise field_error(
                ("birth_date",),
                msg("{name} cannot be in the future", name="birth_date"),
                self.birth_date,
            )
        if self.nik is not None:
            problems = nik_problems(self.nik, self.birth_date, self.sex)
            if problems:
                raise field_error(
                    ("nik",), join("; ", [Message(problem) for problem in problems]), self.nik
                )
        return self


class GuardianIn(_Input):
    """The parent or guardian who gave consent for a child (personal data: stored sealed)."""

    full_name: ShortText = Field(description="The parent's or guardian's full name")
    relationship: GuardianRelationship = Field(description="How they stand to the person")
    phone: Phone | None = Field(
        default=None,
        description="Their telephone number: digits, spaces and hyphens, optionally a leading `+`",
    )


class ConsentIn(_Input):
    """Consent of the person (or, for a child, a parent or guardian) to be referred."""

    # `const` tells generated clients and fuzzers that only true is taken; the check itself
    # stays in `_check`, so `false` keeps its own plain message rather than a literal error.
    given: bool = Field(
        description="Must be true: no referral without consent",
        json_schema_extra={"const": True},
    )
    obtained_at: EventTime = Field(
        description=(
            "When the consent was given: an RFC 3339 date-time with an offset, not in the future"
        )
    )
    method: Literal["written", "verbal", "electronic"] = Field(
        description="How the consent was recorded"
    )
    obtained_by: ShortText = Field(
        description="Name or position of the officer who obtained the consent"
    )
    purposes: list[Code] = code_field(
        "consent_purposes",
        default_factory=lambda: list(DEFAULT_CONSENT_PURPOSES),
        min_length=1,
        max_length=20,
        many=True,
        description=(
            "What the consent covers (UU PDP), each purpose once; must include `REFERRAL`. "
            "When omitted: `REFERRAL`, `ASSESSMENT`, `SERVICE_DELIVERY`."
        ),
    )
    given_by: Literal["subject", "guardian"] = Field(
        default="subject",
        description=(
            "Who consented: the person, or their parent or guardian. A person under 18 at "
            "`obtained_at` (by `subject.birth_date`) needs `guardian`."
        ),
    )
    guardian: GuardianIn | None = Field(
        default=None, description="Required with given_by guardian, refused otherwise"
    )

    @model_validator(mode="after")
    def _check(self) -> ConsentIn:
        if self.given is not True:
            raise field_error(
                ("given",), msg("consent must be given before a person is referred"), self.given
            )
        if len(set(self.purposes)) != len(self.purposes):
            raise field_error(
                ("purposes",), msg("{name} has repeated codes", name="purposes"), self.purposes
            )
        if REQUIRED_CONSENT_PURPOSE not in self.purposes:
            raise field_error(
                ("purposes",),
                msg("purposes must include {purpose}", purpose=REQUIRED_CONSENT_PURPOSE),
                self.purposes,
            )
        if self.given_by == "guardian" and self.guardian is None:
            raise field_error(
                ("guardian",), msg("guardian is required when consent is given_by guardian"), None
            )
        if self.given_by == "subject" and self.guardian is not None:
            raise field_error(
                ("guardian",),
                msg("guardian is only taken when consent is given_by guardian"),
                None,
            )
        return self


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years of age on `day`."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


class ReferralCreate(_Input):
    """A new referral, sent by the caller's agency."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_agency": "KEMENSOS",
                    "subject": {
                        "full_name": "Siti Rahayu",
                        "nik": "3171014508900003",
                        "birth_date": "1990-08-05",
                        "sex": "female",
                        "address": "Jl. Melati No. 5, Jakarta Pusat",
                        "region_code": "31.71.01",
                        "phone": "+62 812 0000 0000",
                    },
                    "protected_identity": True,
                    "groups": ["KORBAN_KEKERASAN"],
                    "kemenham_groups": [],
                    "case_types": ["TPPO"],
                    "urgency": "urgent",
                    "summary": "Survivor of trafficking; needs social rehabilitation.",
                    "consent": {
                        "given": True,
                        "obtained_at": "2026-11-20T09:00:00+07:00",
                        "method": "written",
                        "obtained_by": "Petugas LPSK",
                        "purposes": ["REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY", "PROTECTION"],
                        "given_by": "subject",
                    },
                    "external_ref": "LPSK-2026-0042",
                },
                {
                    "to_agency": "KEMENSOS",
                    "subject": {
                        "full_name": "Putri Anggraini",
                        "nik": "3171015203120002",
                        "birth_date": "2012-03-12",
                        "sex": "female",
                        "region_code": "31.71.01",
                    },
                    "protected_identity": False,
                    "groups": ["ANAK_RENTAN"],
                    "case_types": ["KEKERASAN_FISIK"],
                    "urgency": "emergency",
                    "summary": "Child victim of violence; needs a safe placement.",
                    "consent": {
                        "given": True,
                        "obtained_at": "2026-11-20T09:00:00+07:00",
                        "method": "written",
                        "obtained_by": "Petugas LPSK",
                        "purposes": ["REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY"],
                        "given_by": "guardian",
                        "guardian": {
                            "full_name": "Sri Wahyuni",
                            "relationship": "parent",
                            "phone": "+62 813 0000 0000",
                        },
                    },
                },
            ]
        },
    )

    to_agency: AgencyCode = agency_field(
        "The receiving agency; not the caller's own (a cooperation agreement between the two "
        "may be required)."
    )
    subject: SubjectIn = Field(description="The person referred")
    protected_identity: bool = Field(
        default=False,
        description=(
            "True for a person under LPSK protection: the identifying fields (name, NIK, birth "
            "date, address, phone) are then withheld from lists, events, webhooks and logs, and "
            "shown only on a reveal with `X-Reveal-Reason`, which is audited"
        ),
    )
    groups: list[Code] = code_field(
        "groups",
        default_factory=list,
        max_length=12,
        many=True,
        description=(
            "The person's 12-PAS groups (PPKS), each once. At least one of `groups` and "
            "`kemenham_groups` is required."
        ),
    )
    kemenham_groups: list[Code] = code_field(
        "kemenham_groups",
        default_factory=list,
        max_length=20,
        many=True,
        description=(
            "The person's KemenHAM groups, beside or instead of the 12-PAS ones, each once."
        ),
    )
    case_types: list[Code] = code_field(
        "case_types",
        default_factory=list,
        max_length=20,
        many=True,
        description="What happened to the person (e.g. `TPPO`), each once; may be empty.",
    )
    urgency: Urgency = Field(
        description=(
            "How soon the receiver must assess: sets `due_at` (by default 24 hours for "
            "`emergency`, 72 for `urgent`, 14 days for `routine`)"
        )
    )
    summary: LongText = Field(
        description="Why the person is referred and what they need, up to 4000 characters"
    )
    consent: ConsentIn = Field(description="The person's (or guardian's) consent to the referral")
    external_ref: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="The sender's own case number, up to 100 characters"
    )

    @model_validator(mode="after")
    def _check(self) -> ReferralCreate:
        if not self.groups and not self.kemenham_groups:
            raise ValueError(msg("give at least one of groups or kemenham_groups"))
        for name in ("groups", "kemenham_groups", "case_types"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise field_error((name,), msg("{name} has repeated codes", name=name), values)
        # UU PDP Pasal 25: a child's data is processed with a parent's or guardian's consent.
        birth = self.subject.birth_date
        if (
            birth is not None
            and self.consent.given_by != "guardian"
            and age_on(birth, self.consent.obtained_at.date()) < ADULT_AGE
        ):
            raise field_error(
                ("consent", "given_by"),
                msg(
                    "the person was under 18 when consent was obtained, so a parent or guardian "
                    "must give it (given_by guardian, with guardian)"
                ),
                self.consent.given_by,
            )
        return self


class AssessIn(_Input):
    """The receiving agency's assessment of the person's needs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "needs": ["REHABILITASI_SOSIAL", "DUKUNGAN_PSIKOSOSIAL"],
                    "approach": "residential",
                    "service_unit": "SENTRA_HANDAYANI",
                    "notes": "Needs a safe residential placement first.",
                }
            ]
        },
    )

    needs: list[Code] = code_field(
        "service_types",
        min_length=1,
        max_length=20,
        many=True,
        description="The services the person needs (ATENSI service types), at least one.",
    )
    approach: Approach = Field(
        description=(
            "Where the person is served: in a residence, in their family, or in the community"
        )
    )
    service_unit: Code = code_field(
        "service_units",
        description="The unit (a Sentra or other) that will serve the person; one of the "
        "receiving agency's own units.",
    )
    notes: LongText | None = Field(
        default=None, description="The assessment's notes, up to 4000 characters"
    )


class ServiceIn(_Input):
    """A service the receiving agency starts for the person."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_type": "REHABILITASI_SOSIAL",
                    "service_unit": "SENTRA_HANDAYANI",
                    "started_at": "2026-11-22T08:00:00+07:00",
                    "notes": "Admitted.",
                }
            ]
        },
    )

    service_type: Code = code_field(
        "service_types",
        description="The service given. An `empowerment` service cannot start before a "
        "`rehabilitation` service the assessment named as needed.",
    )
    service_unit: Code = code_field(
        "service_units",
        description="The unit that gives the service; one of the receiving agency's own units.",
    )
    started_at: EventTime = Field(
        description=(
            "When the service started: not before the referral was created or assessed, "
            "not in the future"
        )
    )
    notes: LongText | None = Field(
        default=None, description="Notes on the service, up to 4000 characters"
    )


class CloseIn(_Input):
    """How a referral ends."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"outcome": "completed", "notes": "Reintegrated."}]},
    )

    outcome: Outcome = code_field(
        "outcomes",
        description="How the referral ends; who may choose which outcome, from which state, is "
        "listed under the operation.",
    )
    reason: Code | None = code_field(
        "decline_reasons",
        default=None,
        description="Why the receiver declines: required with outcome `declined`, refused with "
        "any other.",
    )
    notes: LongText | None = Field(
        default=None, description="Notes on the closure, up to 4000 characters"
    )
    onward_agency: AgencyCode | None = agency_field(
        "The agency the person is referred on to: required with outcome `referred_onward` "
        "(a child referral to it is created), refused with any other; not the caller's own.",
        default=None,
    )


class ConsentWithdrawalIn(_Input):
    """The person withdraws their consent (UU PDP Pasal 40)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "withdrawn_at": "2026-11-25T10:30:00+07:00",
                    "notes": "Withdrew consent by telephone to the case officer.",
                }
            ]
        },
    )

    withdrawn_at: EventTime = Field(
        description=(
            "When the person (or guardian) withdrew consent: not before the consent was "
            "obtained, not in the future"
        )
    )
    notes: LongText | None = Field(
        default=None, description="How the withdrawal was received, up to 4000 characters"
    )


class NoteIn(_Input):
    """A note for the other party."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Family visit planned."}]})

    text: LongText = Field(description="The note, up to 4000 characters")


# ---- responses -------------------------------------------------------------------------------


class SubjectOut(BaseModel):
    """The person; identifying fields are null when sealed (protected identity)."""

    full_name: str | None = Field(
        default=None, description="The person's full name; null when sealed or erased"
    )
    nik: str | None = Field(
        default=None,
        description="The person's 16-digit NIK; null when sealed or erased, or when none was given",
    )
    nik_absent_reason: str | None = Field(
        default=None,
        description="Why no NIK was given, as sent; null when a NIK was given, after erasure, "
        "or to the receiver after consent withdrawal",
    )
    birth_date: dt.date | None = Field(
        default=None, description="Date of birth; null when sealed, erased or not given"
    )
    sex: str | None = Field(
        default=None,
        description="`male` or `female` as sent; null when not given, after erasure, or to "
        "the receiver after consent withdrawal",
    )
    address: str | None = Field(
        default=None, description="Postal address; null when sealed, erased or not given"
    )
    region_code: str | None = Field(
        default=None,
        description="Kemendagri region code as sent; null when not given, after erasure, or "
        "to the receiver after consent withdrawal",
    )
    phone: str | None = Field(
        default=None, description="Telephone number; null when sealed, erased or not given"
    )
    sealed: bool = Field(
        default=False,
        description=(
            "True when identifying fields are withheld: an LPSK-protected person (unless "
            "revealed), or a referral whose consent was withdrawn, to its receiving agency "
            "(which then sees no subject field at all: sex and region code are null too)"
        ),
    )


class GuardianOut(BaseModel):
    """The parent or guardian who gave consent for a child."""

    full_name: str = Field(description="The parent's or guardian's full name")
    relationship: str = Field(
        description="How they stand to the person: `parent`, `legal_guardian`, "
        "`social_worker` or `other`"
    )
    phone: str | None = Field(default=None, description="Their telephone number, if given")


class ConsentOut(BaseModel):
    """The consent the referral was made under."""

    given: bool = Field(description="Always true: no referral is made without consent")
    obtained_at: Instant = Field(description="When the consent was given")
    method: str = Field(description="How it was recorded: `written`, `verbal` or `electronic`")
    obtained_by: str = Field(description="The officer who obtained it")
    purposes: list[str] = code_field(
        "consent_purposes",
        default_factory=lambda: list(DEFAULT_CONSENT_PURPOSES),
        many=True,
        description="What the consent covers (UU PDP).",
    )
    given_by: str = Field(
        default="subject",
        description="Who consented: `subject` (the person) or `guardian` (for a child)",
    )
    guardian: GuardianOut | None = Field(
        default=None,
        description=(
            "The parent or guardian who consented; null when none, when the identity is "
            "withheld (like the subject's), or after the personal data was erased"
        ),
    )
    withdrawn_at: Instant | None = Field(
        default=None, description="When the consent was withdrawn, if it was"
    )


class AssessmentOut(BaseModel):
    """The receiving agency's assessment."""

    needs: list[str] = code_field(
        "service_types", many=True, description="The services the person needs."
    )
    approach: str = Field(
        description="Where the person is served: `residential`, `family` or `community`"
    )
    service_unit: str = code_field(
        "service_units", description="The receiving agency's unit that will serve the person."
    )
    notes: str | None = Field(
        default=None, description="The assessment's notes; null when none, withheld or erased"
    )
    assessed_at: Instant = Field(description="When the assessment was recorded")


class ServiceOut(BaseModel):
    """A service given to the person."""

    id: uuid.UUID = Field(description="The service record's id")
    service_type: str = code_field("service_types", description="The service given.")
    service_unit: str = code_field("service_units", description="The unit that gives it.")
    phase: str = Field(
        description="The service type's ATENSI phase when it was recorded: `rehabilitation` "
        "or `empowerment`"
    )
    started_at: Instant = Field(description="When the service started, as the receiver said")
    notes: str | None = Field(
        default=None, description="Notes on the service; null when none, withheld or erased"
    )
    recorded_at: Instant = Field(description="When the service was recorded here")


class ClosureOut(BaseModel):
    """How the referral ended."""

    outcome: str = code_field("outcomes", description="How the referral ended.")
    reason: str | None = code_field(
        "decline_reasons",
        default=None,
        description="Why it was declined; null for any other outcome.",
    )
    notes: str | None = Field(
        default=None, description="Notes on the closure; null when none, withheld or erased"
    )
    onward_agency: str | None = agency_field(
        "The agency the person was referred on to; null unless the outcome is "
        "`referred_onward`.",
        default=None,
    )
    onward_referral_id: uuid.UUID | None = Field(
        default=None,
        description="The child referral created for `referred_onward`; null for any other outcome",
    )
    closed_at: Instant = Field(description="When the referral was closed")


class ReferralRead(BaseModel):
    """A referral as either party sees it."""

    id: uuid.UUID = Field(description="The referral's id, used in its URLs")
    reference: str = Field(
        description=(
            "Human-readable and unique: `RJK-<year>-` and 8 random characters of Crockford's "
            "base32 (referrals created before this format keep their `RJK-<year>-<6 digits>`)"
        ),
        examples=["RJK-2026-7K3QX9MD"],
    )
    status: Status = Field(
        description="Where the referral stands: `referred`, then `assessed`, `served` and "
        "finally `closed`"
    )
    from_agency: str = agency_field("The sending agency.")
    to_agency: str = agency_field("The receiving agency.")
    subject: SubjectOut = Field(description="The person referred, as the caller may see them")
    protected_identity: bool = Field(
        description="True for a person under LPSK protection: identifying fields are withheld "
        "unless revealed"
    )
    groups: list[str] = code_field("groups", many=True, description="The person's 12-PAS groups.")
    kemenham_groups: list[str] = code_field(
        "kemenham_groups", many=True, description="The person's KemenHAM groups."
    )
    case_types: list[str] = code_field(
        "case_types", many=True, description="What happened to the person."
    )
    urgency: Urgency = Field(description="How soon the receiver must assess, as the sender set it")
    summary: str = Field(description="Empty when withheld (consent withdrawn) or erased")
    consent: ConsentOut = Field(description="The consent the referral was made under")
    external_ref: str | None = Field(
        default=None,
        description="The sender's own case number; withheld from the receiver after consent "
        "withdrawal",
    )
    assessment: AssessmentOut | None = Field(
        default=None, description="The receiver's assessment; null until the referral is assessed"
    )
    services: list[ServiceOut] = Field(
        default_factory=list, description="The services given, in the order they were recorded"
    )
    closure: ClosureOut | None = Field(
        default=None, description="How the referral ended; null while it is open"
    )
    parent_id: uuid.UUID | None = Field(
        default=None,
        description="The referral this one continues (closed `referred_onward`); null for a "
        "referral made directly",
    )
    possible_duplicate_of: uuid.UUID | None = Field(
        default=None,
        description=(
            "Shown to the receiving agency only: an open referral of the same person (same "
            "NIK) to it from another sender, open when this one was created. Always null for "
            "the sender; null for the receiver while this referral's identity is sealed to "
            "it (a protected person not revealed, or after consent withdrawal); never names "
            "a protected person's referral"
        ),
    )
    due_at: Instant | None = Field(
        default=None,
        description="When the current step must be done: the assessment (by `urgency`), the "
        "first service after assessment, the closure after the first service; null once closed",
    )
    is_overdue: bool = Field(
        default=False, description="True when the referral is open and `due_at` has passed"
    )
    consent_withdrawn: bool = Field(
        default=False,
        description=(
            "Consent was withdrawn: the referral is closed and its receiving agency no longer "
            "sees any subject field, the guardian, `external_ref`, the summary or notes"
        ),
    )
    purged_at: Instant | None = Field(
        default=None,
        description=(
            "When retention erased the person's data (subject fields null, texts empty); "
            "statistics stay"
        ),
    )
    created_at: Instant = Field(description="When the referral was created")
    updated_at: Instant = Field(description="When the referral last changed")
    version: int = Field(
        description="Counts the referral's changes from 1; its `ETag` is this number quoted, "
        "for `If-Match`"
    )
    unavailable: bool = Field(
        default=False,
        description=(
            "True when the service could not open this referral's sealed data (a damaged "
            "stored value, or a data key missing from its key file; the operator is alerted "
            "and `rujukan check` names it): the person's fields, the summary, the guardian and "
            "all notes are then empty or null, and the other fields are as stored. The rest of "
            "a list page is served as usual"
        ),
    )


class ReferralPage(BaseModel):
    """One page of referrals; pass `next_cursor` back as `cursor` for the next."""

    items: list[ReferralRead] = Field(description="The referrals of this page, newest first")
    next_cursor: str | None = Field(
        default=None,
        description="Opaque; pass it as `cursor` for the next page. Null on the last page",
    )


class NoteRead(BaseModel):
    """A note on a referral."""

    id: uuid.UUID = Field(description="The note's id")
    text: str = Field(description="Empty when withheld or erased")
    author_agency: str = agency_field("The agency that wrote the note.")
    created_at: Instant = Field(description="When the note was added")
    withheld: bool = Field(
        default=False,
        description="True when the text is withheld (consent withdrawn; caller is the receiver)",
    )


class HistoryEntry(BaseModel):
    """One successful action on a referral."""

    id: int = Field(description="The entry's number in the referral's history: 1, 2, ...")
    action: str = Field(
        description="What was done: `create`, `assess`, `serve`, `record_service`, "
        "`add_note`, or `close:<outcome>` (e.g. `close:completed`, `close:consent_withdrawn`)",
        examples=["assess"],
    )
    from_status: str | None = Field(
        default=None, description="The status before the action; null for `create`"
    )
    to_status: str = Field(description="The status after the action")
    actor_agency: str = agency_field("The agency that acted.")
    occurred_at: Instant = Field(description="When the action was committed")
    detail: dict[str, str | int | bool | None] = Field(
        default_factory=dict,
        description="What the action recorded, without personal data (e.g. the outcome, a "
        "decline reason, the service type); keys depend on the action",
    )
