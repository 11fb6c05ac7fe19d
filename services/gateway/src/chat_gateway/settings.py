"""Settings of the gateway (`CHAT_GATEWAY_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings


class GatewaySettings(ChatSettings):
    """Everything the gateway reads from its environment."""

    SERVICE: ClassVar[str] = "gateway"
    model_config = SettingsConfigDict(env_prefix="CHAT_GATEWAY_", extra="ignore", validate_default=True)

    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"])
    max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024)

    @model_validator(mode="after")
    def _no_wildcard_origin_outside_dev(self) -> Self:
        if self.mode == "prod" and ("*" in self.allowed_origins or not self.allowed_origins):
            raise ValueError("allowed_origins: list the web origins explicitly outside dev mode ('*' is refused)")
        return self
