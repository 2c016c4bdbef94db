"""Settings, read once from `RUJUKAN_*` environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import limits
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.auth.scopes import parse_scopes, unknown_scopes

DEFAULT_SIGNING_KEY_FILE = Path("./var/signing-keys.pem")
DEFAULT_DATA_KEY_FILE = Path("./var/data-keys.json")
DEFAULT_AUDIT_KEY_FILE = Path("./var/audit-keys.json")
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")


class TrustedIssuer(BaseModel):
    """An external identity provider whose tokens are accepted, bound to what it may speak for.

    A provider runs outside Rujukan's control: its tokens may name only the agency (or agencies)
    it is bound to here, and carry at most the scopes listed here, whatever they claim.
    """

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: Path | None = None
    audience: str = Field(min_length=1)
    # The one agency this provider speaks for, or an explicit list of them.
    agency: str | None = None
    agencies: list[str] | None = None
    # The most a token of this provider grants (a space-separated string or a list).
    scopes: list[str]
    # The token claim that names the agency (required when `agencies` lists several).
    agency_claim: str = "agency"

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a trusted issuer needs at least one scope")
        unknown = unknown_scopes(value)
        if unknown:
            raise ValueError("unknown scope(s): " + ", ".join(unknown))
        return parse_scopes(" ".join(value))

    @model_validator(mode="after")
    def _one_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("a trusted issuer needs exactly one of jwks_url or jwks_file")
        return self

    @model_validator(mode="after")
    def _bound_to_agencies(self) -> TrustedIssuer:
        if (self.agency is None) == (self.agencies is None):
            raise ValueError(
                "a trusted issuer needs the agency it speaks for: exactly one of agency or agencies"
            )
        codes = [self.agency] if self.agency is not None else self.agencies or []
        if not codes or any(not isinstance(c, str) or not c.strip() for c in codes):
            raise ValueError("a trusted issuer's agencies must be non-empty agency codes")
        return self

    @property
    def bound_agencies(self) -> frozenset[str]:
        """The agency codes this provider's tokens may act for."""
        return frozenset([self.agency] if self.agency is not None else self.agencies or [])


class Settings(BaseSettings):
    """Every knob of the service; `prod` refuses generated keys."""

    # Inputs stay out of error messages: a database or Redis URL can carry a password.
    model_config = SettingsConfigDict(
        env_prefix="RUJUKAN_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default="sqlite:///./var/rujukan.db",
        description="SQLAlchemy URL: `sqlite:///...` or `postgresql+psycopg://...`. On "
        "PostgreSQL in prod, the service's own role, which owns nothing (see Deploying, step 3).",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="PostgreSQL: the URL of the role that owns the database, used only by "
        "`rujukan migrate`, which then grants the role of `RUJUKAN_DATABASE_URL` what the "
        "service needs. Unset: `rujukan migrate` uses `RUJUKAN_DATABASE_URL` (SQLite, dev).",
    )
    host: str = Field(
        default="127.0.0.1", description="Where `make run` and `rujukan serve` listen: address."
    )
    port: int = Field(
        default=8000, description="Where `make run` and `rujukan serve` listen: port."
    )
    env: Literal["dev", "prod"] = Field(
        default="dev",
        description="`prod` refuses to start with generated keys or without key files.",
    )
    issuer: str = Field(default="rujukan", description="JWT `iss` issued and required.")
    audience: str = Field(default="rujukan-api", description="JWT `aud` issued and required.")
    signing_key_file: Path | None = Field(
        default=None,
        description="PEM private key(s) that sign tokens. Unset: `./var/signing-keys.pem`, "
        "generated in dev (mode 0600, in a 0700 directory); prod needs it set.",
    )
    data_key_file: Path | None = Field(
        default=None,
        description="Keys that encrypt personal data at rest and key the NIK index. Unset: "
        "`./var/data-keys.json`, generated in dev; prod needs it set.",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="HMAC keys that chain the audit trail and sign its heads. Unset: "
        "`audit-keys.json` beside the data key file (`./var/audit-keys.json`). Generated in "
        "dev; in prod it must exist (never generated; one made for dev is refused).",
    )
    audit_head_dir: Path | None = Field(
        default=None,
        description="Where `rujukan worker` (and the dispatcher embedded in dev) writes signed "
        "heads of the audit trail: append-only files, one per day, 0600 in a 0700 directory, "
        "every `RUJUKAN_AUDIT_HEAD_INTERVAL_SECONDS` and when it stops. Unset: no heads are "
        "written (prod logs a warning when the worker starts).",
    )
    audit_head_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="How often the worker writes a head (also when it starts and stops).",
    )
    webhook_allow_private: bool | None = Field(
        default=None,
        description="Allow webhook URLs on loopback or private networks. Unset: allowed in "
        "dev, refused in prod.",
    )
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="JSON list of external issuers `{iss, jwks_url or jwks_file, audience, "
        "agency, scopes}` whose tokens are also accepted. Each speaks for the one agency it is "
        "bound to (or an explicit list `agencies`; a token naming another is refused) and "
        "grants at most its listed scopes; optional `agency_claim` names the token claim that "
        "names the agency (`agency`). See Security.",
    )
    token_ttl_seconds: int = Field(
        default=900, ge=60, le=3600, description="Lifetime of issued access tokens."
    )
    sla_emergency_hours: int = Field(
        default=24, ge=1, description="Time allowed for the assessment of an emergency referral."
    )
    sla_urgent_hours: int = Field(
        default=72, ge=1, description="Time allowed for the assessment of an urgent referral."
    )
    sla_routine_hours: int = Field(
        default=14 * 24, ge=1, description="Time allowed for the assessment of a routine referral."
    )
    sla_service_start_hours: int = Field(
        default=14 * 24, ge=1, description="Time allowed from assessment to the first service."
    )
    sla_closure_hours: int = Field(
        default=180 * 24, ge=1, description="Time allowed from the first service to closure."
    )
    require_agreement: bool | None = Field(
        default=None,
        description="Refuse referrals between agencies without a cooperation agreement in "
        "force. Unset: on in prod, off in dev.",
    )
    log_level: str = Field(default="INFO", description="Level of the JSON logs.")
    default_language: Literal["en", "id"] = Field(
        default="en",
        description="Language of problem documents (`title`, `detail`, validation messages) "
        "when the request's `Accept-Language` names none the service speaks: `en` (English) "
        "or `id` (Bahasa Indonesia). Codes (`type`, error codes) never change with it.",
    )
    # 600 a minute lets an agency system work through a backlog at 10 requests a second; a
    # runaway loop or a stolen token is cut off.
    rate_limit: str = Field(
        default="600/minute",
        description="Requests per authenticated client (token `iss` + `sub`) over a moving "
        'window, in the `limits` notation ("600/minute", "10/second").',
    )
    # A stranger guessing a client's secret locks out only themself.
    token_failure_limit: str = Field(  # noqa: S105 - a rate, not a secret
        default="10/5minutes",
        description="Failed client authentications per `client_id` from one address before "
        "`POST /oauth/token` answers 429 to that `client_id` from that address.",
    )
    token_address_failure_limit: str = Field(  # noqa: S105 - a rate, not a secret
        default="30/5minutes",
        description="Failed client authentications from one address (an IPv6 address counts "
        "as its /64), whatever the `client_id`s, before `POST /oauth/token` answers 429 to "
        "that address.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis shared by all workers and hosts for the rate-limit counters, e.g. "
        "`redis://127.0.0.1:6379/0`. Unset: in process memory (each worker counts on its own).",
    )
    # Each worker process has its own pool, so a host opens up to
    # workers * (pool_size + max_overflow); keep the sum over all hosts below max_connections.
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="PostgreSQL connections each process keeps open.",
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        le=200,
        description="PostgreSQL connections each process opens beyond the pool under load.",
    )
    db_pool_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a request waits for a PostgreSQL connection of the pool.",
    )
    # On a host with as many workers as cores, a few threads keep the CPU busy; dozens (the
    # default of the thread library) only take turns at Python's interpreter lock and at the
    # database's write locks, and every request gets slower.
    worker_threads: int = Field(
        default=3,
        ge=1,
        le=200,
        description="Requests each worker process handles at once (its thread pool); further "
        "requests wait in its event loop, first come, first served.",
    )
    # A body of the largest size (1 MiB) arrives in time over a link of 300 kbit/s (a weak
    # mobile uplink); one that stalls stops holding memory after this long.
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Time a request's body has to arrive in full after its headers; then 408 "
        "and the connection is closed.",
    )
    # 16 MiB is thousands of referrals (a few KiB each) or 16 bodies of the largest size, and
    # keeps a worker near its memory goal under an upload flood.
    body_budget_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of request bodies one worker process holds at once, over all its "
        "requests (each counted by its Content-Length, or as it arrives when sent in chunks); "
        "a body beyond it gets 503 with `Retry-After` at once.",
    )
    metrics_token_file: Path | None = Field(
        default=None,
        description="A file holding the bearer token Prometheus presents at `GET /metrics` "
        "(its `bearer_token_file`). Unset: `/metrics` is open in dev and refused in prod.",
    )
    embedded_dispatcher: bool | None = Field(
        default=None,
        description="Run the webhook dispatcher inside the web process (`make run`); "
        "production runs `rujukan worker` processes instead. Unset: on in dev, off in prod.",
    )
    dispatcher_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="How often an idle dispatcher looks for due deliveries.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Time a receiver has to answer one attempt, in all (connecting, sending, "
        "reading the status and headers); shorter than the lease.",
    )
    # The n-th failure waits base * 2**(n-1) seconds, capped, with jitter: 5 s, 10 s, ... 1 h;
    # 30 attempts span about 10 to 20 hours, so a receiver down overnight loses nothing.
    webhook_max_attempts: int = Field(
        default=30, ge=1, le=100, description="Attempts before a delivery is `dead`."
    )
    webhook_backoff_base_seconds: float = Field(
        default=5.0, gt=0, description="The first retry's wait, doubled after each failure."
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between two attempts."
    )
    # Longer than the timeout, so a slow send is never retaken while in flight.
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker's claim on a delivery lasts; a crashed worker's claims "
        "are retaken after it. Longer than the timeout.",
    )
    webhook_batch_size: int = Field(
        default=20, ge=1, le=500, description="Deliveries a worker claims at once."
    )
    webhook_concurrency: int = Field(
        default=4, ge=1, le=64, description="Deliveries a worker sends in parallel."
    )

    @field_validator("trusted_issuers", mode="before")
    @classmethod
    def _parse_issuers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator("rate_limit", "token_failure_limit", "token_address_failure_limit")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        try:
            item = limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate limit such as '600/minute'") from exc
        if item.amount < 1:
            raise ValueError("a rate limit must allow at least one request")
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and not raw.strip():
            return None
        if isinstance(raw, str) and not raw.startswith(REDIS_SCHEMES):
            # The URL can hold a password: never echo it.
            raise ValueError("must be a redis://, rediss:// or redis+unix:// URL")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> Settings:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("webhook_lease_seconds must be longer than webhook_timeout_seconds")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_prod(self) -> Settings:
        if any(i.iss == self.issuer for i in self.trusted_issuers):
            raise ValueError("a trusted issuer cannot use Rujukan's own issuer name")
        if self.env == "prod":
            missing = [
                name
                for name, path in (
                    ("RUJUKAN_SIGNING_KEY_FILE", self.signing_key_file),
                    ("RUJUKAN_DATA_KEY_FILE", self.data_key_file),
                )
                if path is None
            ]
            if missing:
                raise ValueError(
                    "prod needs explicitly provisioned keys; set " + ", ".join(missing)
                )
        return self

    def pool_options(self) -> dict[str, Any]:
        """Connection pool arguments for the engine (PostgreSQL only; SQLite ignores them)."""
        if self.database_url.startswith("sqlite"):
            return {}
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout_seconds,
        }

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or DEFAULT_SIGNING_KEY_FILE

    @property
    def data_key_path(self) -> Path:
        return self.data_key_file or DEFAULT_DATA_KEY_FILE

    @property
    def audit_key_path(self) -> Path:
        """The audit key file: as set, else beside the data key file (by default in ./var)."""
        if self.audit_key_file is not None:
            return self.audit_key_file
        if self.data_key_file is not None:
            return self.data_key_file.with_name(DEFAULT_AUDIT_KEY_FILE.name)
        return DEFAULT_AUDIT_KEY_FILE

    @property
    def allow_private_webhooks(self) -> bool:
        if self.webhook_allow_private is None:
            return self.is_dev
        return self.webhook_allow_private

    @property
    def run_embedded_dispatcher(self) -> bool:
        if self.embedded_dispatcher is None:
            return self.is_dev
        return self.embedded_dispatcher

    @property
    def agreement_required(self) -> bool:
        """Whether referrals need a cooperation agreement in force (default: in prod)."""
        if self.require_agreement is None:
            return not self.is_dev
        return self.require_agreement

    def sla_hours(self, urgency: str) -> int:
        """Hours allowed for assessment at this urgency."""
        return {
            "emergency": self.sla_emergency_hours,
            "urgent": self.sla_urgent_hours,
            "routine": self.sla_routine_hours,
        }[urgency]


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
