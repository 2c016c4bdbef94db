"""Settings, read once from `RUJUKAN_*` environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SIGNING_KEY_FILE = Path("./var/signing-keys.pem")
DEFAULT_DATA_KEY_FILE = Path("./var/data-keys.json")


class TrustedIssuer(BaseModel):
    """An external identity provider whose tokens are accepted."""

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: Path | None = None
    audience: str = Field(min_length=1)
    agency_claim: str = "agency"

    @model_validator(mode="after")
    def _one_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("a trusted issuer needs exactly one of jwks_url or jwks_file")
        return self


class Settings(BaseSettings):
    """Every knob of the service; `prod` refuses generated keys."""

    model_config = SettingsConfigDict(env_prefix="RUJUKAN_", extra="ignore")

    database_url: str = "sqlite:///./var/rujukan.db"
    host: str = "127.0.0.1"
    port: int = 8000
    env: Literal["dev", "prod"] = "dev"
    issuer: str = "rujukan"
    audience: str = "rujukan-api"
    signing_key_file: Path | None = None
    data_key_file: Path | None = None
    webhook_allow_private: bool | None = None
    trusted_issuers: list[TrustedIssuer] = Field(default_factory=list)
    token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    # Time allowed for the assessment after a referral is made, by urgency.
    sla_emergency_hours: int = Field(default=24, ge=1)
    sla_urgent_hours: int = Field(default=72, ge=1)
    sla_routine_hours: int = Field(default=14 * 24, ge=1)
    log_level: str = "INFO"

    @field_validator("trusted_issuers", mode="before")
    @classmethod
    def _parse_issuers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

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
    def allow_private_webhooks(self) -> bool:
        if self.webhook_allow_private is None:
            return self.is_dev
        return self.webhook_allow_private

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
