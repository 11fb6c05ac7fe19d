"""Settings of the messages service (`CHAT_MESSAGES_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings


class MessagesSettings(ChatSettings):
    """Everything the messages service reads from its environment."""

    SERVICE: ClassVar[str] = "messages"
    model_config = SettingsConfigDict(env_prefix="CHAT_MESSAGES_", extra="ignore", validate_default=True)

    mongo_url: str = "mongodb://127.0.0.1:27019/?directConnection=true"
    mongo_database: str = Field(default="chat_messages", pattern=r"^[A-Za-z0-9_-]{1,63}$")

    # verifying access tokens issued by the auth service
    auth_issuer: str = "http://127.0.0.1:8000/api/auth"
    auth_audience: str = "chat"
    auth_jwks_url: str = "http://127.0.0.1:8000/api/auth/.well-known/jwks.json"

    # sending limits: a token bucket per user and room
    send_burst: int = Field(default=10, ge=1, le=1000)
    """Messages a user may send in a burst to one room."""
    send_per_second: float = Field(default=1.0, gt=0, le=100)
    """Sustained messages per second per user and room."""
