"""JSON shapes of the admin API and the credentials vault. Secrets come in as `SecretStr`
(never echoed by validation errors or reprs) and never go out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator

from agentloom_gateway.credentials import KINDS, field_problems
from agentloom_gateway.scopes import Scope
from agentloom_gateway.text import PlainName

_Strict = ConfigDict(extra="forbid")

CredentialKind = Literal["api_key", "user_password", "http_header", "oauth2"]
Provider = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SecretValue = Annotated[SecretStr, Field(min_length=1, max_length=16_384)]
AttributeValue = Annotated[str, StringConstraints(max_length=2_048)]

assert set(KINDS) == set(CredentialKind.__args__)  # type: ignore[attr-defined]


class AdminUser(BaseModel):
    id: str
    email: str | None
    name: str
    role: str
    timezone: str
    created_at: datetime
    suspended_at: datetime | None


class AdminUserList(BaseModel):
    users: list[AdminUser]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


class AdminUserIn(BaseModel):
    model_config = _Strict

    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: PlainName = Field(min_length=1, max_length=200)
    role: Literal["user", "admin"] = "user"
    timezone: str = Field(default="UTC", max_length=64)


class AdminApiKeyIn(BaseModel):
    model_config = _Strict

    name: PlainName = Field(min_length=1, max_length=200)
    expires_at: datetime | None = Field(default=None, description="With a time zone.")
    scopes: list[Scope] | None = Field(
        default=None, max_length=32, description="Default: every scope of a plain user."
    )


class CreditGrantIn(BaseModel):
    model_config = _Strict

    amount: int = Field(gt=0, le=10**12, description="Credits to add.")
    reason: str = Field(default="", max_length=500)


class CredentialIn(BaseModel):
    """A credential to store; `secrets` and `attributes` hold the fields of its `kind`:
    api_key {api_key}; user_password {password} + {username}; http_header {value} +
    {header_name, host?}; oauth2 {access_token, refresh_token?} + {scopes?, expires_at?,
    username?}."""

    model_config = _Strict

    provider: Provider = Field(description="E.g. `openai`, `anthropic`, `smtp`, `http`.")
    kind: CredentialKind
    title: PlainName = Field(min_length=1, max_length=200)
    secrets: dict[FieldName, SecretValue] = Field(max_length=8)
    attributes: dict[FieldName, AttributeValue] = Field(default_factory=dict, max_length=8)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> CredentialIn:
        problems = field_problems(self.kind, self.secrets, self.attributes)
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        return self


class CredentialUpdate(BaseModel):
    """New title, or new secret fields (all of them), or new attributes (all of them)."""

    model_config = _Strict

    title: PlainName | None = Field(default=None, min_length=1, max_length=200)
    secrets: dict[FieldName, SecretValue] | None = Field(default=None, max_length=8)
    attributes: dict[FieldName, AttributeValue] | None = Field(default=None, max_length=8)


class CredentialOut(BaseModel):
    id: str
    provider: str
    kind: CredentialKind
    title: str
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime


class CredentialList(BaseModel):
    credentials: list[CredentialOut]
