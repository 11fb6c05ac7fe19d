"""Settings of the rooms service (`CHAT_ROOMS_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings


class RoomsSettings(ChatSettings):
    """Everything the rooms service reads from its environment."""

    SERVICE: ClassVar[str] = "rooms"
    model_config = SettingsConfigDict(env_prefix="CHAT_ROOMS_", extra="ignore", validate_default=True)

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:54329/chat_rooms"
    migrate_on_start: bool = True
