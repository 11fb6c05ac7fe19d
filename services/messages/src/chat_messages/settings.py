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
