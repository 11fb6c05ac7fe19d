"""Settings of the auth service (`CHAT_AUTH_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings


class AuthSettings(ChatSettings):
    """Everything the auth service reads from its environment."""

    SERVICE: ClassVar[str] = "auth"
    model_config = SettingsConfigDict(env_prefix="CHAT_AUTH_", extra="ignore", validate_default=True)

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:54329/chat_auth"
    migrate_on_start: bool = True
