"""Request and response bodies of the auth API. Unknown fields are rejected; every string is bounded."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chat_contracts.fields import Token

Password = Annotated[str, Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])]
EmailAddress = Annotated[str, Field(min_length=3, max_length=254, examples=["ada@example.com"])]
UsernameField = Annotated[str, Field(min_length=1, max_length=64, examples=["ada"])]
Code = Annotated[str, Field(min_length=6, max_length=12, pattern=r"^\s*\d{6}\s*$", examples=["123456"])]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterRequest(Body):
    email: EmailAddress
    username: UsernameField
    password: Password
    display_name: Annotated[str | None, Field(max_length=100)] = None


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str


class EmailCodeRequest(Body):
    email: EmailAddress
    code: Code


class EmailOnly(Body):
    email: EmailAddress


class LoginRequest(Body):
    identifier: Annotated[str, Field(min_length=1, max_length=254, description="email address or username")]
    password: Password


class RefreshRequest(Body):
    refresh_token: Token | None = Field(
        default=None,
        description="The refresh token; web clients omit it and send the httpOnly cookie instead.",
    )


class TokenResponse(BaseModel):
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    access_token: str
    expires_in: int = Field(description="seconds until the access token expires")
    expires_at: datetime
    refresh_token: str = Field(description="rotates on every use; also set as an httpOnly cookie")
    refresh_expires_at: datetime
    session_id: uuid.UUID
    user_id: uuid.UUID


class MfaRequired(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str
    expires_at: datetime
    methods: list[Literal["totp", "recovery_code"]] = ["totp", "recovery_code"]


class SessionView(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str
    auth_method: str
    current: bool


class Profile(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    username: str
    display_name: str
    avatar_url: str | None
    totp_enabled: bool
    has_password: bool
    created_at: datetime


class ProfileUpdate(Body):
    display_name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    username: UsernameField | None = None


class PasswordChange(Body):
    current_password: Password
    new_password: Password


class SessionsEnded(BaseModel):
    sessions_ended: int


class ResetTokenResponse(BaseModel):
    reset_token: str
    expires_at: datetime


class PasswordReset(Body):
    reset_token: Token
    new_password: Password


class DeleteAccount(Body):
    password: Password | None = None


class ServiceInfo(BaseModel):
    service: str
    version: str
    oidc_enabled: bool
    oidc_provider: str | None
    passwordless_totp_login: bool
