"""Everything a use case needs, built once by bootstrap and passed as the first argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chat_auth.domain.passwords import PasswordHasher
from chat_auth.domain.secrets import Sealer
from chat_auth.domain.throttle import Limit
from chat_auth.domain.tokens import TokenIssuer
from chat_auth.service.mail import MailQueue
from chat_auth.service.ports import AuthStore, Clock
from chat_auth.settings import AuthSettings
from chat_runtime.tokens import TokenVerifier


@dataclass(frozen=True, slots=True)
class Client:
    """Who is calling: address (for throttling) and user agent (shown in the session list)."""

    ip: str
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    code_requests: Limit
    code_checks: Limit
    auth_calls: Limit
    registrations: Limit
    totp_attempts: Limit

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Limits:
        window = timedelta(minutes=settings.limit_window_minutes)
        return cls(
            code_requests=Limit(settings.code_requests_per_window, window),
            code_checks=Limit(settings.code_checks_per_window, window),
            auth_calls=Limit(settings.auth_calls_per_window, window),
            registrations=Limit(settings.registrations_per_window, window),
            totp_attempts=Limit(settings.totp_attempts_per_window, window),
        )


@dataclass(frozen=True, slots=True)
class AuthContext:
    """The auth service's dependencies."""

    settings: AuthSettings
    store: AuthStore
    mail: MailQueue
    clock: Clock
    hasher: PasswordHasher
    sealer: Sealer
    issuer: TokenIssuer
    verifier: TokenVerifier
    pepper: bytes
    limits: Limits

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.access_token_ttl_seconds)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_ttl_days)

    @property
    def session_max_age(self) -> timedelta:
        return timedelta(days=self.settings.session_max_age_days)

    @property
    def code_ttl(self) -> timedelta:
        return timedelta(minutes=self.settings.code_ttl_minutes)
