"""Settings of the auth service (`CHAT_AUTH_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings
from chat_runtime.tokens import MAX_ACCESS_TOKEN_TTL_SECONDS


class AuthSettings(ChatSettings):
    """Everything the auth service reads from its environment."""

    SERVICE: ClassVar[str] = "auth"
    GENERATED_SECRETS: ClassVar[tuple[str, ...]] = ("sealing_secret", "code_pepper")
    model_config = SettingsConfigDict(env_prefix="CHAT_AUTH_", extra="ignore", validate_default=True)

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:54329/chat_auth"
    migrate_on_start: bool = True

    # tokens
    issuer: str = "http://127.0.0.1:8000/api/auth"
    audience: str = "chat"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=MAX_ACCESS_TOKEN_TTL_SECONDS)
    refresh_token_ttl_days: int = Field(default=14, ge=1, le=90)
    session_max_age_days: int = Field(default=30, ge=1, le=365)
    retired_key_grace_seconds: int = Field(default=3600, ge=60)
    key_activation_delay_seconds: int = Field(default=600, ge=0, le=86400)
    """A rotated-in key is published this long before it signs (>= every verifier's JWKS cache age)."""
    sealing_secret: SecretStr | None = None
    """Encrypts signing keys and TOTP secrets at rest (AES-256-GCM, key derived per use)."""
    code_pepper: SecretStr | None = None
    """HMAC key for stored email and recovery codes."""

    # web sessions
    cookie_secure: bool | None = None
    """Refresh cookie ``Secure`` flag; default: on outside dev mode."""
    cookie_path: str = "/api/auth"
    trust_forwarded_for: bool = False
    """Take the client address from X-Forwarded-For (only behind a proxy that sets it)."""

    # email
    email_transport: Literal["console", "smtp"] = "console"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "chat <no-reply@chat.localhost>"
    product_name: str = "chat"

    # codes and abuse limits (per 15 minutes unless said otherwise)
    code_ttl_minutes: int = Field(default=10, ge=1, le=10)
    code_max_attempts: int = Field(default=5, ge=1, le=10)
    code_requests_per_window: int = Field(default=3, ge=1, le=3)
    code_checks_per_window: int = Field(default=5, ge=1, le=5)
    auth_calls_per_window: int = Field(default=100, ge=1, le=100)
    registrations_per_window: int = Field(default=10, ge=1)
    limit_window_minutes: int = Field(default=15, ge=1, le=1440)

    # two-factor
    totp_issuer: str = "chat"
    totp_attempts_per_window: int = Field(default=5, ge=1, le=10)
    passwordless_totp_login: bool = False
    """Opt-in: sign in with username + authenticator code alone (weaker; see docs/auth.md)."""

    # Google / any OIDC provider (configured by issuer URL; off while client_id is empty)
    oidc_issuer: str = "https://accounts.google.com"
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_uri: str = "http://127.0.0.1:8000/api/auth/oidc/callback"
    oidc_provider_name: str = "Google"

    # avatars
    avatar_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024)

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.mode != "dev"

    @model_validator(mode="after")
    def _production_rules(self) -> Self:
        if self.mode != "prod":
            return self
        if self.email_transport == "console":
            raise ValueError("email_transport: 'console' prints codes to the log; use 'smtp' outside dev mode")
        if self.oidc_client_id:
            if self.oidc_client_secret is None:
                raise ValueError("oidc_client_secret: required when oidc_client_id is set outside dev mode")
            for name in ("oidc_issuer", "oidc_redirect_uri", "issuer"):
                if not str(getattr(self, name)).startswith("https://"):
                    raise ValueError(f"{name}: must be an https:// URL outside dev mode")
        return self
