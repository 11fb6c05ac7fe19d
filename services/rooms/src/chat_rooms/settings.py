"""Settings of the rooms service (`CHAT_ROOMS_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings


class RoomsSettings(ChatSettings):
    """Everything the rooms service reads from its environment."""

    SERVICE: ClassVar[str] = "rooms"
    model_config = SettingsConfigDict(env_prefix="CHAT_ROOMS_", extra="ignore", validate_default=True)

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:54329/chat_rooms"
    migrate_on_start: bool = True

    # verifying access tokens issued by the auth service
    auth_issuer: str = "http://127.0.0.1:8000/api/auth"
    auth_audience: str = "chat"
    auth_jwks_url: str = "http://127.0.0.1:8000/api/auth/.well-known/jwks.json"

    # rules
    dm_policy: Literal["anyone", "contacts"] = "anyone"
    """Who may open a direct message with you: any verified user unless blocked, or only accepted contacts."""
    default_history: Literal["shared", "joined"] = "shared"
    room_password_failures_free: int = Field(default=5, ge=1, le=20)
    room_password_max_delay_seconds: float = Field(default=300.0, ge=1)
    rooms_per_user_per_hour: int = Field(default=50, ge=1)
