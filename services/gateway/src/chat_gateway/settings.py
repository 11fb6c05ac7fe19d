"""Settings of the gateway (`CHAT_GATEWAY_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

import uuid
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
    instance_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], pattern=r"^[A-Za-z0-9_-]{1,40}$")
    """Names this instance's fan-out consumer groups: every instance must see every event."""

    # verifying access tokens
    auth_issuer: str = "http://127.0.0.1:8000/api/auth"
    auth_audience: str = "chat"
    auth_jwks_url: str = "http://127.0.0.1:8000/api/auth/.well-known/jwks.json"

    # where recovery reads history (the messages service's HTTP API)
    messages_url: str = "http://127.0.0.1:8000"

    # behaviour
    recovery_limit: int = Field(default=500, ge=1, le=10_000)
    """More missed messages than this and a resubscribing client is told to reload (recovered: false)."""
    ack_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_connections_per_user: int = Field(default=10, ge=1, le=1000)
    events_per_second: float = Field(default=20.0, gt=0)
    events_burst: int = Field(default=40, ge=1)

    @model_validator(mode="after")
    def _no_wildcard_origin_outside_dev(self) -> Self:
        if self.mode == "prod" and ("*" in self.allowed_origins or not self.allowed_origins):
            raise ValueError("allowed_origins: list the web origins explicitly outside dev mode ('*' is refused)")
        return self
