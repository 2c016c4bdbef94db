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
from service.inputs import Input, Timestamp
from service.referrals.nik import nik_problems
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

    full_name: ShortText
    nik: str | None = Field(default=None, description="16-digit NIK; absent only with a reason")
    nik_absent_reason: NikAbsentReason | None = None
    birth_date: dt.date | None = None
    sex: Literal["male", "female"] | None = None
    address: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] | None = None
    region_code: (
        Annotated[str, StringConstraints(pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")] | None
    ) = Field(default=None, description="Kemendagri region code, e.g. 31.71.01.1001")
    phone: Phone | None = None

    @model_validator(mode="after")
    def _check_identity(self) -> SubjectIn:
        if self.nik is None and self.nik_absent_reason is None:
            raise ValueError(msg("nik is required unless nik_absent_reason is given"))
        if self.nik is not None and self.nik_absent_reason is not None:
            raise ValueError(msg("give either nik or nik_absent_reason, not both"))
        if self.birth_date is not None and self.birth_date > dt.date.today():
            raise ValueError(msg("{name} cannot be in the future", name="birth_date"))
        if self.nik is not None:
            problems = nik_problems(self.nik, self.birth_date, self.sex)
            if problems:
                raise ValueError(join("; ", [Message(problem) for problem in problems]))
        return self


class GuardianIn(_Input):
    """The parent or guardian who gave consent for a child (personal data: stored sealed)."""

    full_name: ShortText
    relationship: GuardianRelationship
    phone: Phone | None = None


class ConsentIn(_Input):
    """Consent of the person (or, for a child, a parent or guardian) to be referred."""

    # `const` tells generated clients and fuzzers that only true is taken; the check itself
    # stays in `_check`, so `false` keeps its own plain message rather than a literal error.
    given: bool = Field(
        description="Must be true: no referral without consent",
        json_schema_extra={"const": True},
    )
    obtained_at: EventTime
    method: Literal["written", "verbal", "electronic"]
    obtained_by: ShortText = Field(description="Officer who obtained the consent")
    purposes: list[Code] = Field(
        default_factory=lambda: list(DEFAULT_CONSENT_PURPOSES),
        min_length=1,
        max_length=20,
        description=(
            "What the consent covers (UU PDP): codes of the `consent_purpose` taxonomy "
            "(REFERRAL, ASSESSMENT, SERVICE_DELIVERY, CASE_COORDINATION, PROTECTION). Must "
            "include REFERRAL. Default when omitted: REFERRAL, ASSESSMENT, SERVICE_DELIVERY."
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
            raise ValueError(msg("consent must be given before a person is referred"))
        if len(set(self.purposes)) != len(self.purposes):
            raise ValueError(msg("{name} has repeated codes", name="purposes"))
        if REQUIRED_CONSENT_PURPOSE not in self.purposes:
            raise ValueError(
                msg("purposes must include {purpose}", purpose=REQUIRED_CONSENT_PURPOSE)
            )
        if self.given_by == "guardian" and self.guardian is None:
            raise ValueError(msg("guardian is required when consent is given_by guardian"))
        if self.given_by == "subject" and self.guardian is not None:
            raise ValueError(msg("guardian is only taken when consent is given_by guardian"))
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

    to_agency: AgencyCode
    subject: SubjectIn
    protected_identity: bool = False
    groups: list[Code] = Field(default_factory=list, max_length=12)
    kemenham_groups: list[Code] = Field(default_factory=list, max_length=20)
    case_types: list[Code] = Field(default_factory=list, max_length=20)
    urgency: Urgency
    summary: LongText
    consent: ConsentIn
    external_ref: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ReferralCreate:
        if not self.groups and not self.kemenham_groups:
            raise ValueError(msg("give at least one of groups or kemenham_groups"))
        for name in ("groups", "kemenham_groups", "case_types"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(msg("{name} has repeated codes", name=name))
        # UU PDP Pasal 25: a child's data is processed with a parent's or guardian's consent.
        birth = self.subject.birth_date
        if (
            birth is not None
            and self.consent.given_by != "guardian"
            and age_on(birth, self.consent.obtained_at.date()) < ADULT_AGE
        ):
            raise ValueError(
                msg(
                    "consent.given_by: the person was under 18 when consent was obtained, so "
                    "a parent or guardian must give it (given_by guardian, with guardian)"
                )
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

    needs: list[Code] = Field(min_length=1, max_length=20)
    approach: Approach
    service_unit: Code
    notes: LongText | None = None


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

    service_type: Code
    service_unit: Code
    started_at: EventTime = Field(
        description=(
            "When the service started: not before the referral was created or assessed, "
            "not in the future"
        )
    )
    notes: LongText | None = None


class CloseIn(_Input):
    """How a referral ends."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"outcome": "completed", "notes": "Reintegrated."}]},
    )

    outcome: Outcome
    reason: Code | None = Field(default=None, description="Decline reason code; for declined")
    notes: LongText | None = None
    onward_agency: AgencyCode | None = Field(
        default=None, description="Next agency; required for referred_onward"
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
    notes: LongText | None = None


class NoteIn(_Input):
    """A note for the other party."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Family visit planned."}]})

    text: LongText


# ---- responses -------------------------------------------------------------------------------


class SubjectOut(BaseModel):
    """The person; identifying fields are null when sealed (protected identity)."""

    full_name: str | None = None
    nik: str | None = None
    nik_absent_reason: str | None = None
    birth_date: dt.date | None = None
    sex: str | None = None
    address: str | None = None
    region_code: str | None = None
    phone: str | None = None
    sealed: bool = Field(
        default=False,
        description=(
            "True when identifying fields are withheld: an LPSK-protected person (unless "
            "revealed), or a referral whose consent was withdrawn, to its receiving agency "
            "(which then sees no subject field at all: sex and region code are null too)"
        ),
    )


class GuardianOut(BaseModel):
    full_name: str
    relationship: str
    phone: str | None = None


class ConsentOut(BaseModel):
    given: bool
    obtained_at: Instant
    method: str
    obtained_by: str
    purposes: list[str] = Field(default_factory=lambda: list(DEFAULT_CONSENT_PURPOSES))
    given_by: str = "subject"
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
    needs: list[str]
    approach: str
    service_unit: str
    notes: str | None = None
    assessed_at: Instant


class ServiceOut(BaseModel):
    id: uuid.UUID
    service_type: str
    service_unit: str
    phase: str
    started_at: Instant
    notes: str | None = None
    recorded_at: Instant


class ClosureOut(BaseModel):
    outcome: str
    reason: str | None = None
    notes: str | None = None
    onward_agency: str | None = None
    onward_referral_id: uuid.UUID | None = None
    closed_at: Instant


class ReferralRead(BaseModel):
    """A referral as either party sees it."""

    id: uuid.UUID
    reference: str = Field(
        description=(
            "Human-readable and unique: `RJK-<year>-` and 8 random characters of Crockford's "
            "base32 (referrals created before this format keep their `RJK-<year>-<6 digits>`)"
        ),
        examples=["RJK-2026-7K3QX9MD"],
    )
    status: Status
    from_agency: str
    to_agency: str
    subject: SubjectOut
    protected_identity: bool
    groups: list[str]
    kemenham_groups: list[str]
    case_types: list[str]
    urgency: Urgency
    summary: str = Field(description="Empty when withheld (consent withdrawn) or erased")
    consent: ConsentOut
    external_ref: str | None = Field(
        default=None,
        description="The sender's own case number; withheld from the receiver after consent "
        "withdrawal",
    )
    assessment: AssessmentOut | None = None
    services: list[ServiceOut] = Field(default_factory=list)
    closure: ClosureOut | None = None
    parent_id: uuid.UUID | None = None
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
    due_at: Instant | None = None
    is_overdue: bool = False
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
    created_at: Instant
    updated_at: Instant
    version: int
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

    items: list[ReferralRead]
    next_cursor: str | None = None


class NoteRead(BaseModel):
    id: uuid.UUID
    text: str = Field(description="Empty when withheld or erased")
    author_agency: str
    created_at: Instant
    withheld: bool = Field(
        default=False,
        description="True when the text is withheld (consent withdrawn; caller is the receiver)",
    )


class HistoryEntry(BaseModel):
    id: int = Field(description="The entry's number in the referral's history: 1, 2, ...")
    action: str
    from_status: str | None = None
    to_status: str
    actor_agency: str
    occurred_at: Instant
    detail: dict[str, str | int | bool | None] = Field(default_factory=dict)
